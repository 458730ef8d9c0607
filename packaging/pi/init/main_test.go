//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"appliance/piupdate"
)

// TestRelay: the appliance's output reaches the console a whole line
// per write, prefixed, long lines cut; its exit status is passed on.
func TestRelay(t *testing.T) {
	var console records
	long := strings.Repeat("x", 2000)
	status := relay([]string{"/bin/sh", "-c", "echo 'level=ERROR msg=\"start failed\"'; printf 'part' >&2; printf 'ial\\n%s\\nno newline' \"$1\" >&2; exit 3", "sh", long}, &console)
	if status != 3 {
		t.Errorf("status %d, want 3", status)
	}
	want := []string{
		"appliance: level=ERROR msg=\"start failed\"\n",
		"appliance: partial\n",
		"appliance: " + long[:maxLine] + "\n",
		"appliance: no newline\n",
		"appliance: /bin/sh stopped: exit status 3\n",
	}
	// Standard output and error are copied apart: their lines may
	// interleave either way. The last line comes after both.
	got := console.get()
	if len(got) != len(want) || got[len(got)-1] != want[len(want)-1] ||
		!slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("console records:\n%q\nwant, in some order, the last one last\n%q", got, want)
	} else if i, j, k := slices.Index(got, want[1]), slices.Index(got, want[2]), slices.Index(got, want[3]); i > j || j > k {
		t.Errorf("standard error's lines out of order: %q", got)
	}
	console = records{}
	if status := relay([]string{"/nonexistent/appliance"}, &console); status != 1 || len(console.get()) != 1 || !strings.Contains(console.get()[0], "no such file") {
		t.Errorf("a missing program: status %d, console %q", status, console.get())
	}
}

// records keeps each write as /dev/kmsg does: one record per write.
type records struct {
	mu  sync.Mutex
	buf []string
}

func (r *records) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, string(bytes.Clone(p)))
	return len(p), nil
}

func (r *records) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.buf...)
}

// TestTrialDeadlineUnreadable: a board whose state cannot be read
// (here no card at all) is not rebooted: a trial boot is told by the
// slot config.txt names, and rebooting a board whose card cannot be
// read would reboot it every 90 s for ever.
func TestTrialDeadlineUnreadable(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, "cmdline")
	os.WriteFile(proc, []byte("root=PARTUUID=abcd1234-03 appliance.trial_deadline=1ms\n"), 0o644)
	board := &piupdate.Board{ProcCmdline: proc, BootIDFile: filepath.Join(dir, "boot_id"), Disk: filepath.Join(dir, "nodisk")}
	if _, err := board.State(); err == nil {
		t.Fatal("the board's state read")
	}
	trialDeadline(board, func() { t.Error("rebooted") })
}
