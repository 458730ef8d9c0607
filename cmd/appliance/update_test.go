package main

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestUpdateEndpointRefusals: the admin listener's /update is refused
// without admin.token (403, whatever the request), asks for the token
// with one (401), and, authenticated, says this is not a gokrazy board
// (501): the update itself is tested on a board under qemu
// (packaging's TestPiUpdate) and in package piupdate.
func TestUpdateEndpointRefusals(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("admin-secret"), bcrypt.MinCost)
	for _, tc := range []struct {
		name, token, auth string
		want              int
		msg               string
	}{
		{"no admin.token", "", "admin-secret", 403, "updates need admin.token"},
		{"no Authorization", string(hash), "", 401, "a valid admin token is needed"},
		{"wrong token", string(hash), "nope", 401, "a valid admin token is needed"},
		{"not a board", string(hash), "admin-secret", 501, "not a gokrazy board"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "site/index.html", "hello")
			cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = %q\n[[site]]\nroot = %q\n", tc.token, filepath.Join(dir, "site")))
			p := start(t, "-config", cfg)
			admin := strings.TrimPrefix(regexpAdmin.FindStringSubmatch(p.waitLogSeen(t, "admin listener"))[1], "http://")
			for _, method := range []string{"GET", "PUT"} {
				req, _ := http.NewRequest(method, "http://"+admin+"/update", strings.NewReader("hsqs"))
				if tc.auth != "" {
					req.Header.Set("Authorization", "Bearer "+tc.auth)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readBody(res)
				res.Body.Close()
				if res.StatusCode != tc.want || !strings.Contains(body, tc.msg) {
					t.Errorf("%s /update: %d %q, want %d %q", method, res.StatusCode, body, tc.want, tc.msg)
				}
			}
		})
	}
}

// TestUpdateCommandRefusals: appliance update refuses, before it sends
// anything, a missing token, a URL that is not the admin listener's and
// a file that is not an image; it warns of plain HTTP to any address
// but loopback.
func TestUpdateCommandRefusals(t *testing.T) {
	dir := t.TempDir()
	notImage := writeFile(t, dir, "site.img", strings.Repeat("x", 1024))
	for _, tc := range []struct {
		name, token string
		args        []string
		msg         string
	}{
		{"no token", "", []string{notImage, "http://127.0.0.1:1/"}, "set APPLIANCE_ADMIN_TOKEN"},
		{"a path", "t", []string{notImage, "http://127.0.0.1:1/admin"}, "want the admin listener's URL"},
		{"not an image", "t", []string{notImage, "http://127.0.0.1:1/"}, "no MBR partition table"},
		{"localhost", "t", []string{notImage, "http://localhost:1/"}, "no MBR partition table"},
		{"IPv6 loopback", "t", []string{notImage, "http://[::1]:1/"}, "no MBR partition table"},
		{"plain HTTP on a LAN", "t", []string{notImage, "http://192.0.2.1:8081/"}, "192.0.2.1:8081 is plain HTTP: the admin token and the image cross the network in the clear"},
	} {
		c := exec.Command(binary, append([]string{"update"}, tc.args...)...)
		c.Env = []string{"APPLIANCE_ADMIN_TOKEN=" + tc.token}
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.msg) {
			t.Errorf("%s: %v %q, want status 1 and %q", tc.name, err, out, tc.msg)
		}
		if u := tc.args[1]; (strings.Contains(u, "127.0.0.1") || strings.Contains(u, "localhost") || strings.Contains(u, "[::1]")) && strings.Contains(string(out), "plain HTTP") {
			t.Errorf("%s: warned of plain HTTP to loopback: %q", tc.name, out)
		}
	}
}

// TestStableFor: a trial is committed only after its probes have
// passed for the whole window in a row; a failure starts the count
// again, and a server that keeps failing is given up on.
func TestStableFor(t *testing.T) {
	n := 0
	always := func() error { n++; return nil }
	if err := stableFor(always, 5*time.Millisecond, time.Millisecond, time.Minute); err != nil || n < 2 {
		t.Errorf("always passing: %v after %d probes", err, n)
	}
	calls := 0
	flaky := func() error { // fails every third probe: never 50 ms in a row
		calls++
		if calls%3 == 0 {
			return errors.New("down")
		}
		return nil
	}
	if err := stableFor(flaky, time.Hour, time.Millisecond, 30*time.Millisecond); err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("flaky: %v", err)
	}
	crashed := 0
	late := func() error { // fails twice, then passes
		if crashed++; crashed <= 2 {
			return errors.New("starting")
		}
		return nil
	}
	if err := stableFor(late, 3*time.Millisecond, time.Millisecond, time.Minute); err != nil || crashed < 4 {
		t.Errorf("late starter: %v after %d probes", err, crashed)
	}
}

// TestUpdateProxy: a plain http:// admin URL never goes through a proxy
// (HTTP_PROXY would see the admin token); https:// follows the
// environment (CONNECT: the proxy sees the board's name only).
func TestUpdateProxy(t *testing.T) {
	for _, raw := range []string{"http://board.lan:8081/update", "http://192.0.2.7:8081/update"} {
		r, _ := http.NewRequest("PUT", raw, nil)
		if u, err := updateProxy(r); u != nil || err != nil {
			t.Errorf("%s: proxy %v %v", raw, u, err)
		}
	}
	r, _ := http.NewRequest("PUT", "https://board.lan:8081/update", nil)
	want, _ := http.ProxyFromEnvironment(r)
	if u, err := updateProxy(r); err != nil || fmt.Sprint(u) != fmt.Sprint(want) {
		t.Errorf("https: %v %v, want the environment's %v", u, err, want)
	}
}
