package packaging

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestOCI builds the multi-arch image without a daemon, checks its
// platforms and sizes, and runs the amd64 image with podman, read-only
// as its non-root user, as the issue prescribes.
func TestOCI(t *testing.T) {
	out := t.TempDir()
	build := exec.Command("go", "run", "./packaging/cmd/build", "oci", "-out", out)
	build.Dir = ".."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	for _, arch := range []string{"amd64", "arm64", "armv7"} {
		fi, err := os.Stat(filepath.Join(out, "appliance-"+arch+".tar"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 12<<20 {
			t.Errorf("%s image is %d bytes, over 12 MiB", arch, fi.Size())
		}
	}

	files := imageFiles(t, filepath.Join(out, "oci"), "amd64")
	license, _ := os.ReadFile("../LICENSE")
	if got := files["usr/share/doc/appliance/LICENSE"]; len(license) == 0 || string(got) != string(license) {
		t.Errorf("the image's /usr/share/doc/appliance/LICENSE (%d bytes) is not the repository's LICENSE", len(got))
	}
	if !strings.Contains(string(files["usr/share/doc/appliance/copyright"]), "License: MIT") {
		t.Error("the image lacks the third-party notices in /usr/share/doc/appliance/copyright")
	}

	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (apt-get install skopeo podman runc); .ci/run installs them")
	}
	for arch, want := range map[string]string{"amd64": `"Architecture": "amd64"`, "arm64": `"Architecture": "arm64"`, "arm": `"Architecture": "arm"`} {
		b, err := exec.Command("skopeo", "inspect", "--override-arch", arch, "oci:"+filepath.Join(out, "oci")+":latest").CombinedOutput()
		if err != nil || !strings.Contains(string(b), want) || !strings.Contains(string(b), `"org.opencontainers.image.title": "appliance"`) ||
			!strings.Contains(string(b), `"org.opencontainers.image.licenses": "Apache-2.0"`) {
			t.Errorf("skopeo inspect %s: %v\n%s", arch, err, b)
		}
	}

	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed; .ci/run installs it")
	}
	dir := t.TempDir()
	podman := newPodman(t)
	if b, err := podman("load", "-i", filepath.Join(out, "appliance-amd64.tar")).CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, b)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	site := filepath.Join(dir, "appliance.toml")
	os.WriteFile(site, []byte(fmt.Sprintf("[server]\nhttp = %q\nstate_dir = \"/var/lib/appliance\"\n[[site]]\nroot = \"/usr/share/appliance/www\"\n", addr)), 0o644)

	run := podman("run", "--rm", "--name", "appliance-test", "--network", "host", "--read-only",
		"-v", site+":/etc/appliance/appliance.toml:ro", "localhost/appliance:latest")
	stderr, _ := run.StderrPipe()
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		podman("stop", "-t", "5", "appliance-test").Run()
		run.Wait()
	})
	sc := bufio.NewScanner(stderr)
	served := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=serving") {
			served = true
			break
		}
	}
	if !served {
		t.Fatal("the container never served")
	}
	go io.Copy(io.Discard, stderr)
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "appliance is running") {
		t.Fatalf("%d %q", res.StatusCode, b)
	}
	if b, err := podman("exec", "appliance-test", "/usr/bin/appliance", "health", "-config", "/etc/appliance/appliance.toml").CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("healthcheck: %v %s", err, b)
	}
	if b, _ := podman("inspect", "appliance-test", "--format", "{{.Config.User}}").Output(); strings.TrimSpace(string(b)) != "10001:10001" {
		t.Errorf("runs as %q, want 10001:10001", b)
	}
}

// imageFiles reads the files of the platform's image in an OCI layout
// written by the build command (an index holding the multi-arch index).
func imageFiles(t *testing.T, dir, arch string) map[string][]byte {
	t.Helper()
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 {
		t.Fatalf("layout index: %v %v", err, tm)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.Architecture != arch {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		rc := mutate.Extract(img)
		defer rc.Close()
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return files
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[h.Name] = b
		}
	}
	t.Fatalf("no %s image in %s", arch, dir)
	return nil
}

// newPodman returns a podman command maker with the test's own storage
// (vfs), runc and cgroupfs, as this machine allows: no daemon, no
// systemd as PID 1.
func newPodman(t *testing.T) func(args ...string) *exec.Cmd {
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644)
	return func(args ...string) *exec.Cmd {
		cmd := exec.Command("podman", append([]string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
			"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", "runc"}, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		return cmd
	}
}
