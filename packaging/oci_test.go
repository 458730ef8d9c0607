package packaging

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	build.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1767225600") // 2026-01-01
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

	files, cf := imageFiles(t, filepath.Join(out, "oci"), "amd64")
	if got := cf.Created.Time.UTC().Format(time.RFC3339); got != "2026-01-01T00:00:00Z" {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH's 2026-01-01T00:00:00Z", got)
	}
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

	podman := podmanOrSkip(t)
	if b, err := podman("load", "-i", filepath.Join(out, "appliance-amd64.tar")).CombinedOutput(); err != nil {
		t.Fatalf("podman load: %v\n%s", err, b)
	}
	testImageAsDocumented(t, podman, "localhost/appliance:latest")
}

// podmanOrSkip skips a test that runs containers where this machine
// cannot: they need podman and, to reach a container in its own network
// namespace, root, nsenter and curl.
func podmanOrSkip(t *testing.T) func(args ...string) *exec.Cmd {
	for _, tool := range []string{"podman", "runc", "nsenter", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages podman, runc, util-linux, curl); .ci/run installs them", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("entering a container's network namespace needs root")
	}
	return newPodman(t)
}

// testImageAsDocumented runs the image as the README does, with
// --network none for -p: each container has its own loopback, where its
// ports are the image's own (8080, 8443), and the test reaches them with
// nsenter, clashing with nothing on this machine.
func testImageAsDocumented(t *testing.T, podman func(args ...string) *exec.Cmd, image string) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("my own site"), 0o644)
	os.WriteFile(filepath.Join(site, "about.html"), []byte("about my site"), 0o644)

	// podman run --rm --read-only -p 8080:8080 -v ./site:/srv/site:ro
	//   -v appliance-state:/var/lib/appliance localhost/appliance:latest
	c := startContainer(t, podman, "--read-only", "-v", site+":/srv/site:ro", "-v", "appliance-state:/var/lib/appliance", image)
	if body, code := c.get(t, "http://127.0.0.1:8080/"); code != "200" || body != "my own site" {
		t.Errorf("the mounted site: %s %q", code, body)
	}
	if body, code := c.get(t, "http://127.0.0.1:8080/about"); code != "200" || body != "about my site" {
		t.Errorf("the mounted site's /about (clean_urls): %s %q", code, body)
	}
	if b, err := podman("healthcheck", "run", c.name).CombinedOutput(); err != nil {
		t.Errorf("podman healthcheck run (the image's HEALTHCHECK): %v\n%s", err, b)
	}
	if b, _ := podman("inspect", c.name, "--format", "{{.Config.User}}").Output(); strings.TrimSpace(string(b)) != "10001:10001" {
		t.Errorf("runs as %q, want 10001:10001", b)
	}
	c.stop(t)

	// Nothing mounted: the welcome page, which is /srv/site in the image.
	c = startContainer(t, podman, "--read-only", image)
	if body, code := c.get(t, "http://127.0.0.1:8080/"); code != "200" || !strings.Contains(body, "the image's welcome page") || strings.Contains(body, "no configuration file") {
		t.Errorf("the image's welcome page: %s %q", code, body)
	}
	if _, code := c.get(t, "http://127.0.0.1:8080/nothing"); code != "404" {
		t.Errorf("a missing page: %s", code)
	}
	c.stop(t)

	// HTTPS as the README and compose.https.yaml do it.
	c = startContainer(t, podman, "--read-only", "-v", site+":/srv/site:ro", "-v", abs(t, "oci/https.toml")+":/etc/appliance/appliance.toml:ro",
		"-v", "appliance-state:/var/lib/appliance", image)
	if body, code := c.get(t, "https://localhost:8443/"); code != "200" || body != "my own site" {
		t.Errorf("the mounted site over HTTPS: %s %q", code, body)
	}
	if _, code := c.get(t, "http://localhost:8080/"); code != "301" && code != "308" {
		t.Errorf("plain HTTP with HTTPS on: %s, want a redirect", code)
	}
	if b, err := podman("exec", c.name, "/usr/bin/appliance", "ca-cert", "-config", "/etc/appliance/appliance.toml").CombinedOutput(); err != nil || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Errorf("the local CA's root, as the README fetches it: %v\n%s", err, b)
	}
	c.stop(t)

	// Deploying content as the README's "Containers" recipe: a
	// deploy_token site without root, the state volume kept, the local
	// CA's root fetched with podman exec, and appliance deploy from
	// outside the container (here in its network namespace).
	bin := filepath.Join(dir, "appliance")
	if b, err := exec.Command("go", "build", "-o", bin, "../cmd/appliance").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	hashCmd := exec.Command(bin, "hash-password")
	hashCmd.Stdin = strings.NewReader("s3cret-token\n")
	hash, err := hashCmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "deploy.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, "[server]\nhttp = \":8080\"\nhttps = \":8443\"\nstate_dir = \"/var/lib/appliance\"\n[[site]]\nhosts = [\"localhost\"]\ntls = \"local\"\ndeploy_token = %q\n", strings.TrimSpace(string(hash))), 0o644)
	c = startContainer(t, podman, "--read-only", "-v", cfg+":/etc/appliance/appliance.toml:ro", "-v", "appliance-state:/var/lib/appliance", image)
	pem, err := podman("exec", c.name, "/usr/bin/appliance", "ca-cert", "-config", "/etc/appliance/appliance.toml").Output()
	if err != nil {
		t.Fatalf("ca-cert: %v", err)
	}
	caFile := filepath.Join(dir, "local-ca.pem")
	os.WriteFile(caFile, pem, 0o644)
	public := filepath.Join(dir, "public")
	os.MkdirAll(public, 0o755)
	os.WriteFile(filepath.Join(public, "index.html"), []byte("deployed into a container"), 0o644)
	deployCmd := exec.Command("nsenter", "-t", c.pid, "-n", bin, "deploy", "-ca", caFile, public, "https://localhost:8443/")
	deployCmd.Env = append(os.Environ(), "APPLIANCE_DEPLOY_TOKEN=s3cret-token")
	if b, err := deployCmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "live on https://localhost:8443/") {
		t.Errorf("appliance deploy into the container: %v\n%s", err, b)
	} else {
		t.Logf("appliance deploy into the container: %s", b)
	}
	if body, code := c.get(t, "https://localhost:8443/"); code != "200" || body != "deployed into a container" {
		t.Errorf("the deployed site: %s %q", code, body)
	}
	c.stop(t)
}

type container struct {
	name, pid string
	run       *exec.Cmd
	podman    func(args ...string) *exec.Cmd
}

var containers atomic.Int64

// startContainer runs podman run --network none args... and returns once
// the appliance in it says it serves.
func startContainer(t *testing.T, podman func(args ...string) *exec.Cmd, args ...string) *container {
	t.Helper()
	c := &container{name: fmt.Sprintf("appliance-test-%d-%d", os.Getpid(), containers.Add(1)), podman: podman}
	c.run = podman(append([]string{"run", "--rm", "--name", c.name, "--network", "none"}, args...)...)
	stderr, _ := c.run.StderrPipe()
	if err := c.run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.stop(t) })
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	served := false
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "msg=serving") {
			served = true
			break
		}
	}
	if !served {
		t.Fatalf("the container never served:\n%s", log.String())
	}
	go io.Copy(io.Discard, stderr)
	b, err := podman("inspect", c.name, "--format", "{{.State.Pid}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	c.pid = strings.TrimSpace(string(b))
	return c
}

// get fetches url in the container's network namespace: the body and the
// status code.
func (c *container) get(t *testing.T, url string) (string, string) {
	t.Helper()
	b, err := exec.Command("nsenter", "-t", c.pid, "-n", "curl", "-sS", "-k", "-m", "10", "-w", "\n%{http_code}", url).CombinedOutput()
	if err != nil {
		t.Errorf("curl %s: %v\n%s", url, err, b)
		return "", ""
	}
	i := strings.LastIndex(string(b), "\n")
	return string(b[:i]), string(b[i+1:])
}

func (c *container) stop(t *testing.T) {
	if c.run.ProcessState != nil {
		return
	}
	c.podman("stop", "-t", "5", c.name).Run()
	c.run.Wait()
}

func abs(t *testing.T, path string) string {
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// imageFiles reads the files of the platform's image in an OCI layout
// written by the build command (an index holding the multi-arch index).
func imageFiles(t *testing.T, dir, arch string) (map[string][]byte, *v1.ConfigFile) {
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
		cf, err := img.ConfigFile()
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
				return files, cf
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[h.Name] = b
		}
	}
	t.Fatalf("no %s image in %s", arch, dir)
	return nil, nil
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
