package packaging

import (
	"bytes"
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
// serves from slot 3, its own kernel, committed), then to a B' whose
// appliance exits at start: the trial boot never commits, init reboots
// at the deadline and the board comes back on B, B's kernel and root;
// appliance update says so and exits 1. The site on /perm answers the
// same page throughout. The images are built with qemu's kernel, and
// the test plays the firmware (piBoard): it boots the kernel of the
// slot config.txt (or, after a reboot with the tryboot flag,
// tryboot.txt) names. B's kernel is A's with 64 KiB appended (the
// module proxy here serves one qemu kernel): another file, so that
// which slot's kernel booted shows in its SHA-256. The trial deadline
// is 30 s here (appliance.trial_deadline=30s on the kernel command
// line); the board's is 90 s.
func TestPiUpdate(t *testing.T) {
	piTools(t)
	begin := time.Now()
	dir := t.TempDir()
	app, hash := hostAppliance(t, dir)
	site := filepath.Join(dir, "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello from the board</h1>\n"), 0o644)
	config := filepath.Join(dir, "appliance.toml")
	os.WriteFile(config, []byte(fmt.Sprintf("[server]\nhttp = \":80\"\nstate_dir = \"/perm/appliance/state\"\n[admin]\nlisten = \":8081\"\ntoken = %q\n[[site]]\nroot = \"/perm/appliance/site\"\n", hash("board-secret"))), 0o644)
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
	// The kernels: qemu's (A), and the same with 64 KiB appended (B).
	mod, err := exec.Command("go", "mod", "download", "-json", kernelQEMU).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", kernelQEMU, err)
	}
	var m struct{ Dir string }
	json.Unmarshal(mod, &m)
	kernelA, kernelB := m.Dir, filepath.Join(dir, "kernel-b")
	if err := os.CopyFS(kernelB, os.DirFS(kernelA)); err != nil {
		t.Fatal(err)
	}
	vmlinuz, _ := os.ReadFile(filepath.Join(kernelA, "vmlinuz"))
	vmlinuzB := append(bytes.Clone(vmlinuz), bytes.Repeat([]byte("B"), 64<<10)...)
	os.WriteFile(filepath.Join(kernelB, "vmlinuz"), vmlinuzB, 0o644)
	shaA, shaB := sha256hex(vmlinuz), sha256hex(vmlinuzB)

	flags := []string{"-config", config, "-site", site}
	imgA := buildPi(t, filepath.Join(dir, "a"), append(flags, "-version", "A-1", "-kernel", kernelA)...)
	imgB := buildPi(t, filepath.Join(dir, "b"), append(flags, "-version", "B-2", "-kernel", kernelB)...)
	imgB2 := buildPi(t, filepath.Join(dir, "b2"), append(flags, "-appliance", filepath.Join(broken, "appliance"), "-kernel", kernelA)...)
	t.Logf("three images built in %s", time.Since(begin).Round(time.Second))

	b := bootPi(t, imgA, "", "appliance.trial_deadline=30s", true)
	b.waitSite(t, "hello from the board")
	st := b.status(t)
	if !strings.Contains(st.Version, "A-1") || st.Partition != 2 || st.Trial || !st.Committed || st.Kernel != shaA {
		t.Fatalf("before the update: %+v", st)
	}
	b.waitConsole(t, "firmware: boot 1: config.txt, os_prefix=slot2/, kernel sha256 "+shaA, time.Second)
	t.Logf("A serves from slot 2 after %s", time.Since(begin).Round(time.Second))

	update := func(img string) (string, error) {
		c := exec.Command(app, "update", img, fmt.Sprintf("http://127.0.0.1:%d/", b.adminPort))
		c.Env = append(os.Environ(), "APPLIANCE_ADMIN_TOKEN=board-secret")
		out, err := c.CombinedOutput()
		t.Logf("appliance update %s: %v\n%s", filepath.Base(filepath.Dir(img)), err, out)
		return string(out), err
	}
	// A to B: written to slot 3 (root and kernel), tried, committed.
	out, err := update(imgB)
	if err != nil || !strings.Contains(out, "root file system written to partition 3") || !strings.Contains(out, "its kernel to slot 3") ||
		!strings.Contains(out, "updated: the board runs appliance B-2") || !strings.Contains(out, "from partition 3") ||
		!strings.Contains(out, fmt.Sprintf("kernel: sha256 %.12s, was %.12s", shaB, shaA)) {
		t.Fatalf("A to B: %v\n%s\n%s", err, out, b.consoleLog())
	}
	if !strings.Contains(b.consoleLog(), "Restarting system with command '0 tryboot'") {
		t.Logf("the kernel's restart line did not reach the console this time")
	}
	b.waitConsole(t, "firmware: boot 2: tryboot.txt, os_prefix=slot3/, kernel sha256 "+shaB, time.Second)
	b.waitConsole(t, "update: trial boot of slot 3", time.Minute)
	b.waitConsole(t, "msg=\"update: served steadily on the trial boot: committed", time.Minute)
	if c, _ := b.bootFile("config.txt"); !strings.Contains(c, "\nos_prefix=slot3/\n") {
		t.Errorf("config.txt after the update to B: %q", c)
	}
	if st := b.status(t); st.Kernel != shaB || st.Partition != 3 || !st.Committed {
		t.Errorf("after the update to B: %+v", st)
	}
	b.waitSite(t, "hello from the board")
	t.Logf("B serves from slot 3 after %s", time.Since(begin).Round(time.Second))

	// B to B': written to slot 2, tried, never healthy: back on B.
	out, err = update(imgB2)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "root file system written to partition 2") ||
		!strings.Contains(out, "rolled back: partition 2 did not become healthy in time; the board runs appliance B-2") {
		t.Fatalf("B to B': %v\n%s\n%s", err, out, b.consoleLog())
	}
	b.waitConsole(t, "firmware: boot 3: tryboot.txt, os_prefix=slot2/, kernel sha256 "+shaA, time.Second)
	b.waitConsole(t, "broken appliance: exiting at start", time.Second)
	b.waitConsole(t, "update: slot 2 not committed within 30s", time.Second)
	b.waitConsole(t, "firmware: boot 4: config.txt, os_prefix=slot3/, kernel sha256 "+shaB, time.Second)
	st = b.status(t)
	if !strings.Contains(st.Version, "B-2") || st.Partition != 3 || st.Trial || !st.Committed || st.Kernel != shaB {
		t.Fatalf("after the rollback: %+v", st)
	}
	if c, _ := b.bootFile("config.txt"); !strings.Contains(c, "\nos_prefix=slot3/\n") {
		t.Errorf("config.txt after the rollback: %q", c)
	}
	b.waitSite(t, "hello from the board")
	for _, line := range strings.Split(b.consoleLog(), "\n") {
		if strings.Contains(line, "update: ") || strings.Contains(line, "firmware: ") || strings.Contains(line, "broken appliance") || strings.Contains(line, "tryboot") {
			t.Logf("console: %s", line)
		}
	}
	t.Logf("B serves from slot 3 again after %s, %d boots", time.Since(begin).Round(time.Second), b.bootCount())
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
