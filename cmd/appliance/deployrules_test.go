package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"appliance/rewrite"
)

// TestDeployBeforeSiteRules: the deploy endpoint is handled before the
// site's rules, as the README says: a site whose [[site.auth]],
// [[site.access]] and [[site.rate_limit]] (one request an hour) cover
// every path, and that has a fallback, still takes deploys, releases
// and rollbacks with its token, while its content is refused to the
// same client.
func TestDeployBeforeSiteRules(t *testing.T) {
	dir := t.TempDir()
	s := &deploySite{dir: dir, state: filepath.Join(dir, "state", "sites", "127.0.0.1")}
	s.cfg = writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
state_dir = "state"
[[site]]
hosts = ["127.0.0.1"]
tls = "local"
deploy_token = %q
fallback = "/index.html"
[[site.auth]]
path = "/"
users = { alice = %q }
[[site.access]]
path = "/"
deny = ["127.0.0.0/8", "::1"]
[[site.rate_limit]]
path = "/"
rate = "1/h"
`, rewrite.HashPassword("s3cret-token"), rewrite.HashPassword("x")))
	s.start(t)
	pem, err := exec.Command(binary, "ca-cert", "-config", s.cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	s.ca = writeFile(t, dir, "ca.pem", string(pem))
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("v1"), 0o644)
	if out := s.deploy(t, src); !strings.Contains(out, "is live on") {
		t.Fatalf("deploy: %s", out)
	}
	os.WriteFile(filepath.Join(src, "index.html"), []byte("v2"), 0o644)
	s.deploy(t, src)
	if out, err := s.run(t, "s3cret-token", "releases", "-ca", s.ca, s.url()); err != nil || strings.Count(out, "\n") != 3 {
		t.Errorf("releases: %v\n%s", err, out)
	}
	if out, err := s.run(t, "s3cret-token", "rollback", "-ca", s.ca, s.url()); err != nil || !strings.Contains(out, "active:") {
		t.Errorf("rollback: %v\n%s", err, out)
	}
	if out, err := s.run(t, "wrong", "releases", "-ca", s.ca, s.url()); err == nil || !strings.Contains(out, "401") {
		t.Errorf("releases with a wrong token: %v\n%s", err, out)
	}
	c := sniClient(s.httpsAt, "", true)
	if _, _, status, err := get(c, s.url()+"index.html"); err != nil || status != http.StatusForbidden {
		t.Errorf("the content, to a denied client: %d %v, want 403", status, err)
	}
}
