package packaging

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"appliance/piupdate"
)

// TestPiUpdate updates a board under qemu from version A to B (B
// serves from root partition 3, committed), then to a B' whose
// appliance exits at start: the trial boot never commits, init reboots
// at the deadline and the board comes back on B; appliance update says
// so and exits 1. The site on /perm answers the same page throughout.
// The trial deadline is 30 s here (appliance.trial_deadline=30s on the
// kernel command line); the board's is 90 s.
func TestPiUpdate(t *testing.T) {
	piTools(t)
	begin := time.Now()
	dir := t.TempDir()
	app := filepath.Join(dir, "appliance")
	if out, err := exec.Command("go", "build", "-o", app, "../cmd/appliance").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	hash := exec.Command(app, "hash-password")
	hash.Stdin = strings.NewReader("board-secret\n")
	sum, err := hash.Output()
	if err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(dir, "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello from the board</h1>\n"), 0o644)
	config := filepath.Join(dir, "appliance.toml")
	os.WriteFile(config, []byte(fmt.Sprintf("[server]\nhttp = \":80\"\nstate_dir = \"/perm/appliance/state\"\n[admin]\nlisten = \":8081\"\ntoken = %q\n[[site]]\nroot = \"/perm/appliance/site\"\n", strings.TrimSpace(string(sum)))), 0o644)
	// B': an appliance that exits at start.
	broken := filepath.Join(dir, "broken")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "main.go"), []byte("package main\n\nimport \"os\"\n\nfunc main() {\n\tos.Stderr.WriteString(\"broken appliance: exiting at start\\n\")\n\tos.Exit(1)\n}\n"), 0o644)
	gb := exec.Command("go", "build", "-o", "appliance", "main.go")
	gb.Dir = broken
	gb.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("go build B': %v\n%s", err, out)
	}
	flags := []string{"-config", config, "-site", site}
	imgA := buildPi(t, filepath.Join(dir, "a"), append(flags, "-version", "A-1")...)
	imgB := buildPi(t, filepath.Join(dir, "b"), append(flags, "-version", "B-2")...)
	imgB2 := buildPi(t, filepath.Join(dir, "b2"), append(flags, "-appliance", filepath.Join(broken, "appliance"))...)
	t.Logf("three images built in %s", time.Since(begin).Round(time.Second))

	b := bootPi(t, imgA, "", "appliance.trial_deadline=30s")
	b.waitSite(t, "hello from the board")
	st := b.status(t)
	if !strings.Contains(st.Version, "A-1") || st.Partition != 2 || st.Trial || !st.Committed {
		t.Fatalf("before the update: %+v", st)
	}
	t.Logf("A serves from partition 2 after %s", time.Since(begin).Round(time.Second))

	update := func(img string) (string, error) {
		c := exec.Command(app, "update", img, fmt.Sprintf("http://127.0.0.1:%d/", b.adminPort))
		c.Env = append(os.Environ(), "APPLIANCE_ADMIN_TOKEN=board-secret")
		out, err := c.CombinedOutput()
		t.Logf("appliance update %s: %v\n%s", filepath.Base(filepath.Dir(img)), err, out)
		return string(out), err
	}
	// A to B: written to partition 3, tried, committed.
	out, err := update(imgB)
	if err != nil || !strings.Contains(out, "root file system written to partition 3") || !strings.Contains(out, "updated: the board runs appliance B-2") || !strings.Contains(out, "from partition 3") {
		t.Fatalf("A to B: %v\n%s\n%s", err, out, b.consoleLog())
	}
	b.waitConsole(t, "update: trial boot of root partition 3", time.Minute)
	b.waitConsole(t, "msg=\"update: served steadily on the trial boot: committed", time.Minute)
	if c, _ := b.cmdline(); !strings.Contains(c, "-03 ") || strings.Contains(c, "gokrazy.try_boot_inactive") {
		t.Errorf("cmdline.txt after the update to B: %q", c)
	}
	b.waitSite(t, "hello from the board")
	t.Logf("B serves from partition 3 after %s", time.Since(begin).Round(time.Second))

	// B to B': written to partition 2, tried, never healthy: back on B.
	out, err = update(imgB2)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "root file system written to partition 2") ||
		!strings.Contains(out, "rolled back: partition 2 did not become healthy in time; the board runs appliance B-2") {
		t.Fatalf("B to B': %v\n%s\n%s", err, out, b.consoleLog())
	}
	b.waitConsole(t, "broken appliance: exiting at start", time.Second)
	b.waitConsole(t, "update: root partition 2 not committed within 30s", time.Second)
	st = b.status(t)
	if !strings.Contains(st.Version, "B-2") || st.Partition != 3 || st.Trial || !st.Committed {
		t.Fatalf("after the rollback: %+v", st)
	}
	if c, _ := b.cmdline(); !strings.Contains(c, "-03 ") {
		t.Errorf("cmdline.txt after the rollback: %q", c)
	}
	b.waitSite(t, "hello from the board")
	for _, line := range strings.Split(b.consoleLog(), "\n") {
		if strings.Contains(line, "update: ") || strings.Contains(line, "firmware: ") || strings.Contains(line, "broken appliance") {
			t.Logf("console: %s", line)
		}
	}
	t.Logf("B serves from partition 3 again after %s, %d boots", time.Since(begin).Round(time.Second), b.bootCount())
}

// status asks the board's admin listener where it stands, until it
// answers (the first answer hashes the kernel: seconds under qemu).
func (b *piBoard) status(t *testing.T) piupdate.Status {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/update", b.adminPort), nil)
		req.Header.Set("Authorization", "Bearer board-secret")
		res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err == nil {
			var st piupdate.Status
			err = json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if err == nil && res.StatusCode == 200 {
				return st
			}
			err = fmt.Errorf("%d %v", res.StatusCode, err)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("GET /update: %v\n%s", err, b.consoleLog())
		}
	}
}

func (b *piBoard) bootCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.boots
}
