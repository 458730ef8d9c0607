package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogFiles: the server's own log goes to log_file as well as to
// standard error, and the access log file is written through the
// rolling writer (its bound is TestRollingFileIsBounded's).
func TestLogFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "hello")
	cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
access_log = "logs/access.log"
access_log_max_bytes = "1MiB"
access_log_keep = 2
log_file = "logs/server.log"
log_max_bytes = "1MiB"
log_keep = 2
[[site]]
root = %q
`, filepath.Join(dir, "site")))
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	p := start(t, "-config", cfg)
	res, err := http.Get("http://" + p.addr + "/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v", err)
	}
	res.Body.Close()
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
	server, _ := os.ReadFile(filepath.Join(dir, "logs", "server.log"))
	if !strings.Contains(string(server), "msg=serving") {
		t.Errorf("server.log lacks the serving line:\n%s", server)
	}
	access, _ := os.ReadFile(filepath.Join(dir, "logs", "access.log"))
	if !strings.Contains(string(access), `"GET / HTTP/1.1" 200 5`) {
		t.Errorf("access.log: %q", access)
	}
	// A log file that cannot be written stops the start, naming the key.
	bad := writeFile(t, dir, "bad.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\nlog_file = \"site/index.html/server.log\"\n[[site]]\nroot = %q\n", filepath.Join(dir, "site")))
	_, stderr, code := runBinary(t, "", "-config", bad)
	if code != 1 || !strings.Contains(stderr, "bad.toml:3: log_file") {
		t.Errorf("unwritable log_file: status %d, %s", code, stderr)
	}
}

// TestAdminToken: with admin.token, the server log (/log), /metrics and
// the profiles need the bearer token, as deploys do; /healthz does not.
func TestAdminToken(t *testing.T) {
	cfg := siteConfig(t, "")
	b, _ := os.ReadFile(cfg)
	cmd := exec.Command(binary, "hash-password")
	cmd.Stdin = strings.NewReader("admin-token\n")
	hash, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, append(b, fmt.Sprintf("[admin]\nlisten = \"127.0.0.1:0\"\npprof = true\ntoken = %q\n", strings.TrimSpace(string(hash)))...), 0o644)
	p := start(t, "-config", cfg)
	admin := "http://" + strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", admin+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, readBody(res)
	}
	for _, path := range []string{"/log", "/metrics", "/debug/pprof/heap"} {
		for _, token := range []string{"", "wrong"} {
			if code, _ := get(path, token); code != 401 {
				t.Errorf("%s with token %q: %d, want 401", path, token, code)
			}
		}
	}
	if code, body := get("/log", "admin-token"); code != 200 || !strings.Contains(body, "msg=serving") {
		t.Errorf("/log with the token: %d %q", code, body)
	}
	if code, _ := get("/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}
