package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"appliance/config"
	"appliance/internal/httpx"
	"appliance/serve"
)

// Maintenance: while the file maintenanceFile is in server.state_dir,
// every site answers 503 with Retry-After and its maintenance page,
// except under /.well-known/ (ACME's challenges, security.txt), with no
// reload. The server looks for the file once per maintenancePoll and on
// SIGHUP, never per request: a request reads one atomic flag. A poll
// rather than inotify: one stat a second costs nothing, works on every
// file system (a volume in a container, the Pi's ext4) and sees a file
// an operator touched by hand as well as `appliance maintenance on`.
const (
	maintenanceFile = "maintenance"
	maintenancePoll = time.Second
)

// maintenancePath is the switch file of cfg's server.
func maintenancePath(cfg *config.Config) string {
	return filepath.Join(cfg.Server.StateDir, maintenanceFile)
}

// checkMaintenance turns maintenance on or off as the switch file is
// there or not, and logs each change.
func (s *server) checkMaintenance() {
	path := maintenancePath(s.cfg)
	_, err := os.Stat(path)
	on := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Unreadable is not off: keep the state, say why once per change.
		on = s.maintenance.Load()
	}
	if s.maintenance.Swap(on) != on {
		if on {
			s.log.Warn("maintenance on: every site answers 503 except /.well-known/", "file", path)
		} else {
			s.log.Info("maintenance off: serving again", "file", path)
		}
	}
}

// defaultMaintenanceRetry is the Retry-After of maintenance answers
// unless server.maintenance_retry_after says otherwise.
const defaultMaintenanceRetry = 300 * time.Second

// maintenanceGate answers 503 with Retry-After and the site's
// maintenance page (page, sent by pages; "": the built-in one) while the
// server is in maintenance, and hands everything else, and everything
// under /.well-known/ always, to next. A retryAfter of 0 is
// defaultMaintenanceRetry.
func (s *server) maintenanceGate(page string, pages *serve.Handler, retryAfter time.Duration, next http.Handler) http.Handler {
	retryAfter = cmp.Or(retryAfter, defaultMaintenanceRetry)
	retry := []string{httpx.RetryAfter(retryAfter)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.maintenance.Load() || strings.HasPrefix(r.URL.Path, "/.well-known/") {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h["Retry-After"] = retry
		if page != "" {
			pages.ServePage(w, r, page, http.StatusServiceUnavailable)
			return
		}
		h["Content-Type"] = maintenanceHeader.contentType
		h["Content-Length"] = maintenanceHeader.contentLength
		h["Cache-Control"] = maintenanceHeader.cacheControl
		h["X-Content-Type-Options"] = maintenanceHeader.nosniff
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			io.WriteString(w, maintenanceHTML)
		}
	})
}

// maintenanceHeader holds the built-in page's header values, made once
// rather than per request; writers only read them.
var maintenanceHeader = struct{ contentType, contentLength, cacheControl, nosniff []string }{
	[]string{"text/html; charset=utf-8"}, []string{strconv.Itoa(len(maintenanceHTML))}, []string{"no-cache"}, []string{"nosniff"},
}

// maintenanceHTML is the maintenance page of a site without one.
const maintenanceHTML = `<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Down for maintenance</title>
<h1>Down for maintenance</h1>
<p>This site is being worked on and will be back shortly. Please try again in a few minutes.</p>
</html>
`

// setMaintenance is `appliance maintenance on|off`: it creates or
// removes the switch file in cfg's state_dir; the server sees it within
// maintenancePoll.
func setMaintenance(cfg *config.Config, state string, stdout, stderr io.Writer) int {
	path := maintenancePath(cfg)
	switch state {
	case "on":
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintf(stdout, "maintenance was already on (%s)\n", path)
			return 0
		}
		if err := makeStateDir(filepath.Dir(path)); err != nil {
			fmt.Fprintln(stderr, "appliance maintenance:", err)
			return 1
		}
		msg := "on since " + time.Now().UTC().Format(time.RFC3339) + "\n"
		if err := os.WriteFile(path, []byte(msg), 0o644); err != nil {
			fmt.Fprintln(stderr, "appliance maintenance:", err)
			return 1
		}
		fmt.Fprintf(stdout, "maintenance on (%s): the server answers 503 within %s\n", path, maintenancePoll)
	case "off":
		err := os.Remove(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(stdout, "maintenance was already off (no %s)\n", path)
		case err != nil:
			fmt.Fprintln(stderr, "appliance maintenance:", err)
			return 1
		default:
			fmt.Fprintf(stdout, "maintenance off (%s removed): the server serves again within %s\n", path, maintenancePoll)
		}
	default:
		return usageError(stderr, "maintenance: want on or off, not %q", state)
	}
	return 0
}

// makeStateDir creates the state directory dir if it is missing, as
// the server would (0700), but not as root: a directory of root's
// would keep a service with its own user out.
func makeStateDir(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or an error the write reports better
	}
	if os.Geteuid() == 0 {
		return fmt.Errorf("server.state_dir %s does not exist: start the server first (it creates it with its own user), or create it for that user", dir)
	}
	return os.MkdirAll(dir, 0o700)
}
