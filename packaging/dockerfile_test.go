package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"appliance/config"
)

// TestDockerfile builds packaging/Dockerfile with podman (buildah) and
// runs the image as the README does. No registry is reachable here, so
// the golang build stage is replaced, as BuildKit and buildah allow, by
// a named build context holding what that stage's one command writes:
// the test runs the same command (build rootfs) itself. The final stage
// is the Dockerfile's own. --format docker: as Docker builds it (OCI
// image configs have no HEALTHCHECK).
func TestDockerfile(t *testing.T) {
	podman := podmanOrSkip(t)
	stage := t.TempDir()
	rootfs := exec.Command("go", "run", "./packaging/cmd/build", "rootfs", "-arch", "amd64", "-out", filepath.Join(stage, "out"))
	rootfs.Dir = ".."
	if b, err := rootfs.CombinedOutput(); err != nil {
		t.Fatalf("build rootfs: %v\n%s", err, b)
	}
	const image = "localhost/appliance-dockerfile:test"
	build := podman("build", "--format", "docker", "--network", "none", "--build-context", "build="+stage, "-f", "packaging/Dockerfile", "-t", image, ".")
	build.Dir = ".."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v\n%s", err, b)
	}
	b, _ := podman("image", "inspect", image, "--format", "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{index .Config.Labels \"org.opencontainers.image.licenses\"}}").CombinedOutput()
	if want := `10001:10001 ["/usr/bin/appliance"] ["serve","-config","/etc/appliance/appliance.toml"] Apache-2.0`; strings.TrimSpace(string(b)) != want {
		t.Errorf("image config %q, want %q", b, want)
	}
	testImageAsDocumented(t, podman, image)
}

// TestDockerignore: the build context leaves out what builds leave
// behind (packaging/out holds a Raspberry Pi image of about 1 GB).
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"packaging/out", "bench/out", ".git"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(b) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}

// TestCompose checks what can be checked without a Compose engine: the
// files mount what the image serves, at its paths and ports, and the
// HTTPS example configuration loads. (TestOCI and TestDockerfile run the
// same mounts with podman.)
func TestCompose(t *testing.T) {
	plain, _ := os.ReadFile("compose.yaml")
	https, _ := os.ReadFile("compose.https.yaml")
	for _, want := range []string{"image: localhost/appliance:latest", "read_only: true", `- "8080:8080"`,
		"- ./site:/srv/site:ro", "- appliance-state:/var/lib/appliance"} {
		if !strings.Contains(string(plain), want) {
			t.Errorf("compose.yaml lacks %q", want)
		}
	}
	for _, want := range []string{`- "8443:8443"`, "- ./appliance.toml:/etc/appliance/appliance.toml:ro"} {
		if !strings.Contains(string(https), want) {
			t.Errorf("compose.https.yaml lacks %q", want)
		}
	}
	for name, b := range map[string][]byte{"compose.yaml": plain, "compose.https.yaml": https} {
		if strings.Contains(string(b), "\t") {
			t.Errorf("%s: tabs in YAML", name)
		}
	}
	// The image's configuration serves /srv/site on 8080; the HTTPS one
	// adds 8443.
	// (/srv/site is a test directory here.)
	site := t.TempDir()
	for file, want := range map[string][2]string{"oci/appliance.toml": {":8080", ""}, "oci/https.toml": {":8080", ":8443"}} {
		b, _ := os.ReadFile(file)
		if !strings.Contains(string(b), "\nroot = \"/srv/site\"\n") {
			t.Errorf("%s does not serve /srv/site", file)
		}
		cfg, err := config.Parse(file, []byte(strings.ReplaceAll(string(b), "/srv/site", site)))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if cfg.Server.HTTP != want[0] || cfg.Server.HTTPS != want[1] || len(cfg.Sites) != 1 || cfg.Sites[0].Root != site || cfg.Server.StateDir != "/var/lib/appliance" {
			t.Errorf("%s: http %q https %q state_dir %q sites %d", file, cfg.Server.HTTP, cfg.Server.HTTPS, cfg.Server.StateDir, len(cfg.Sites))
		}
	}
}
