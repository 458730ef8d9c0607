package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeb builds the amd64 package with the build command, inspects it,
// unpacks it into a scratch root and runs what it installed.
func TestDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed (Debian package dpkg)")
	}
	out := t.TempDir()
	build := exec.Command("go", "run", "./packaging/cmd/build", "deb", "-arch", "amd64", "-out", out)
	build.Dir = ".."
	b, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b))
	field := func(name string) string {
		v, _ := exec.Command("dpkg-deb", "-f", deb, name).Output()
		return strings.TrimSpace(string(v))
	}
	if field("Package") != "appliance" || field("Architecture") != "amd64" || !strings.HasPrefix(field("Version"), "0.1.0~") {
		t.Fatalf("control: %s %s %s", field("Package"), field("Architecture"), field("Version"))
	}

	list, _ := exec.Command("dpkg-deb", "-c", deb).Output()
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/appliance",
		"-rw-r--r-- root/root .* ./lib/systemd/system/appliance.service",
		"-rw-r--r-- root/root .* ./lib/systemd/system/appliance.socket",
		"-rw-r--r-- root/root .* ./lib/systemd/system/appliance-https.socket",
		"-rw-r--r-- root/root .* ./etc/appliance/appliance.toml",
		"-rw-r--r-- root/root .* ./usr/share/appliance/www/index.html",
		"-rw-r--r-- root/root .* ./usr/share/doc/appliance/copyright",
		"drwxr-xr-x root/root .* ./\n",
	} {
		if !regexpMatch(want, string(list)) {
			t.Errorf("package lacks %q:\n%s", want, list)
		}
	}

	scratch := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", deb, scratch).CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, b)
	}
	ctl := t.TempDir()
	exec.Command("dpkg-deb", "-e", deb, ctl).Run()
	if c, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(c) != "/etc/appliance/appliance.toml\n" {
		t.Errorf("conffiles %q: edits to the configuration must survive upgrades", c)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", s, err, fi)
			continue
		}
		if b, err := exec.Command("sh", "-n", filepath.Join(ctl, s)).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, b)
		}
	}

	// The licence, stated as Debian's copyright format wants it.
	copyright, _ := os.ReadFile(filepath.Join(scratch, "usr/share/doc/appliance/copyright"))
	for _, want := range []string{"\nFiles: *\nCopyright: 2026 the appliance developers\nLicense: Apache-2.0\n",
		"\nLicense: Apache-2.0\n Licensed under the Apache License", `"/usr/share/common-licenses/Apache-2.0"`,
		"\nLicense: MIT\n", "\nLicense: BSD-3-Clause\n"} {
		if !strings.Contains(string(copyright), want) {
			t.Errorf("copyright lacks %q", want)
		}
	}

	bin := filepath.Join(scratch, "usr/bin/appliance")
	if v, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(v), "0.1.0~") {
		t.Errorf("installed binary: %q %v", v, err)
	}
	// The shipped configuration is valid once its root is where the
	// package put the welcome site.
	conf, _ := os.ReadFile(filepath.Join(scratch, "etc/appliance/appliance.toml"))
	moved := filepath.Join(t.TempDir(), "appliance.toml")
	os.WriteFile(moved, []byte(strings.ReplaceAll(string(conf), "/usr/share/appliance/www", filepath.Join(scratch, "usr/share/appliance/www"))), 0o644)
	if b, err := exec.Command(bin, "check", "-config", moved).CombinedOutput(); err != nil {
		t.Errorf("shipped configuration: %v\n%s", err, b)
	}

	t.Run("under systemd", func(t *testing.T) { testDebUnderSystemd(t, deb) })

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian not installed (apt-get install lintian); .ci/run installs it")
		return
	}
	lint, _ := exec.Command("lintian", "--tag-display-limit", "0", deb).CombinedOutput()
	for _, line := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(line, "E:") || (strings.HasPrefix(line, "W:") && (strings.Contains(line, "copyright") || strings.Contains(line, "license"))) {
			t.Errorf("lintian: %s", line)
		}
	}
}
