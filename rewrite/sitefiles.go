package rewrite

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"appliance/internal/clock"
	"appliance/internal/httpx"
	"appliance/vhost"
)

// SiteFileNames are the rules files a site may keep in its root, in the
// syntax of Netlify and Cloudflare Pages. With the files on, the file
// server must treat them as absent: they are rules, not content.
var SiteFileNames = []string{"_redirects", "_headers"}

// maxLoggedErrors bounds the lines one refused file puts in the log; the
// rest are counted.
const maxLoggedErrors = 100

// SiteFilesOptions say where a site's rules files are and how often they
// are checked.
type SiteFilesOptions struct {
	Dir        string        // the site root as configured, for messages
	Hosts      []string      // the site's host names, lower case: redirects back to them are checked for loops
	Revalidate time.Duration // the files are checked for a change at most this often; default 1s
	Log        *slog.Logger  // every refused line is logged here, as file:line: message
}

// SiteFiles holds the rules of a site's own _redirects and _headers files
// and re-reads a file when it changes (an edit, or a deploy that swaps
// the root): no request stats the files, the first one after each
// Revalidate interval does, and only a changed file is parsed again. A
// file with any error is refused whole, every error is logged with its
// line, and the rules it gave before stay in force.
type SiteFiles struct {
	fsys     fs.FS
	opts     SiteFilesOptions
	interval int64

	cur     atomic.Pointer[siteRules]
	checked atomic.Int64 // clock.Mono of the last check

	mu     sync.Mutex     // serialises checks
	stamp  [2]fs.FileInfo // what each file was at the last check (nil: absent)
	failed [2]string      // why it could not be looked at, "" if it could
}

// siteRules are the compiled files, replaced whole on a change.
type siteRules struct {
	redirects *redirectsTable // nil: none
	headers   []*fileHeaders
}

// NewSiteFiles reads the rules files in fsys (the site root) now and
// returns the holder that keeps them current.
func NewSiteFiles(fsys fs.FS, opts SiteFilesOptions) *SiteFiles {
	if opts.Revalidate <= 0 {
		opts.Revalidate = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	sf := &SiteFiles{fsys: fsys, opts: opts, interval: int64(opts.Revalidate)}
	sf.cur.Store(&siteRules{})
	sf.check(true)
	sf.checked.Store(clock.Mono())
	return sf
}

// current returns the rules in force, checking the files first when the
// interval has passed since the last check (one request does, the others
// go on with the rules they find).
func (sf *SiteFiles) current() *siteRules {
	now := clock.Mono()
	if last := sf.checked.Load(); now-last >= sf.interval && sf.checked.CompareAndSwap(last, now) {
		sf.check(false)
	}
	return sf.cur.Load()
}

// check stats both files and parses those that changed.
func (sf *SiteFiles) check(first bool) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	next := *sf.cur.Load()
	changed := false
	for i, name := range SiteFileNames {
		if sf.checkFile(i, name, first, &next) {
			changed = true
		}
	}
	if changed {
		sf.cur.Store(&next)
	}
}

// checkFile stats the file SiteFileNames[i], name, and when it changed
// (or first) parses it into next; it reports whether next changed.
func (sf *SiteFiles) checkFile(i int, name string, first bool, next *siteRules) bool {
	display := filepath.Join(sf.opts.Dir, name)
	fi, ok := sf.stat(i, name, display)
	if !ok {
		return false
	}
	if !first && sf.failed[i] == "" && sameFile(fi, sf.stamp[i]) {
		return false
	}
	sf.stamp[i], sf.failed[i] = fi, ""
	var data []byte
	if fi != nil {
		var err error
		if data, err = readRulesFile(sf.fsys, name, fi); err != nil {
			sf.opts.Log.Error("site rules file refused; keeping its previous rules", "err", fmt.Errorf("%s: %w", display, err))
			return false
		}
	}
	n, errs := sf.parse(name, display, data, next)
	sf.logRefused(display, errs)
	if len(errs) > 0 {
		return false
	}
	if fi != nil || !first {
		sf.opts.Log.Info("site rules file loaded", "file", display, "rules", n)
	}
	return true
}

// stat stats the file SiteFileNames[i], name: nil when there is none;
// ok is false when it could not be read (logged once per cause).
func (sf *SiteFiles) stat(i int, name, display string) (fi fs.FileInfo, ok bool) {
	fi, err := fs.Stat(sf.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true
	}
	if err != nil {
		if msg := err.Error(); msg != sf.failed[i] { // once per cause
			sf.failed[i] = msg
			sf.opts.Log.Error("site rules file unreadable; keeping its previous rules", "file", display, "err", err)
		}
		return nil, false
	}
	return fi, true
}

// parse parses data, the file name, into next when it has no errors, and
// returns the number of its rules.
func (sf *SiteFiles) parse(name, display string, data []byte, next *siteRules) (n int, errs []error) {
	switch name {
	case "_redirects":
		var t *redirectsTable
		if t, errs = parseRedirects(display, data, sf.opts.Hosts); len(errs) == 0 {
			next.redirects, n = t, len(t.rules)
		}
	case "_headers":
		var h []*fileHeaders
		if h, errs = parseHeaders(display, data); len(errs) == 0 {
			next.headers, n = h, len(h)
		}
	}
	return n, errs
}

// logRefused logs the errors of a file, up to maxLoggedErrors of them.
func (sf *SiteFiles) logRefused(display string, errs []error) {
	for i, err := range errs {
		if i == maxLoggedErrors {
			sf.opts.Log.Error("site rules file refused; keeping its previous rules", "file", display, "more_errors", len(errs)-i)
			break
		}
		sf.opts.Log.Error("site rules file refused; keeping its previous rules", "err", err)
	}
}

func readRulesFile(fsys fs.FS, name string, fi fs.FileInfo) ([]byte, error) {
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > maxRulesFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxRulesFileBytes)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRulesFileBytes+1))
	if err == nil && len(data) > maxRulesFileBytes {
		err = fmt.Errorf("larger than %d bytes", maxRulesFileBytes)
	}
	return data, err
}

// sameFile reports whether two looks at a file saw the same version:
// size, modification time and identity (a deploy that swaps the root
// brings another inode even with the same size and time).
func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode() &&
		(os.SameFile(a, b) || a.Sys() == nil && b.Sys() == nil)
}

// siteRedirects applies the first _redirects rule that matches p, in file
// order: a redirect answers (done); a rewrite returns the path and query
// to serve and, for 404 and 410, the status to serve them with.
func (e *engine) siteRedirects(w http.ResponseWriter, r *http.Request, t *redirectsTable, p, rawQuery string) (string, string, int, bool) {
	st, dyn := t.static[pathKey(p)], t.dynamic
	for len(st) > 0 || len(dyn) > 0 {
		var i int32
		if len(dyn) == 0 || len(st) > 0 && st[0] < dyn[0] {
			i, st = st[0], st[1:]
		} else {
			i, dyn = dyn[0], dyn[1:]
			if !hasLowerPrefix(p, t.rules[i].prefix) {
				continue
			}
		}
		fr := &t.rules[i]
		m := fr.from().match(p)
		if m == nil || !e.holds(fr.cond(), r, p, nil) {
			continue
		}
		if fr.redirect != nil {
			e.sendRedirectRule(w, r, fr.redirect, p, m)
			return "", "", 0, true
		}
		np, q, status := fr.rewrite.apply(p, m, rawQuery)
		if status != 0 {
			vhost.Error(w, r, status)
			return "", "", 0, true
		}
		if fr.status == http.StatusOK {
			return np, q, 0, false
		}
		return np, q, fr.status, false
	}
	return p, rawQuery, 0, false
}

// withStatus serves r through next with status instead of 200: the
// target of a 404 or 410 rule. The request goes without conditionals and
// ranges, which speak of a 200 representation.
func withStatus(next http.Handler, w http.ResponseWriter, r *http.Request, status int) {
	r2 := *r
	r2.Header = r.Header.Clone()
	for _, k := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"} {
		delete(r2.Header, k)
	}
	sw := &statusWriter{status: status}
	sw.HookWriter = httpx.HookWriter{ResponseWriterWrapper: httpx.ResponseWriterWrapper{ResponseWriter: w}, Hook: sw}
	next.ServeHTTP(sw, &r2)
}

// statusWriter turns a 200 into its status; validators go, since the
// answer is an error, not the file's representation.
type statusWriter struct {
	httpx.HookWriter
	status int
}

// BeforeHeader turns a 200 into the rule's status, without validators.
func (w *statusWriter) BeforeHeader(h http.Header, code int) int {
	if code != http.StatusOK {
		return code
	}
	delete(h, "Etag")
	delete(h, "Last-Modified")
	delete(h, "Accept-Ranges")
	return w.status
}
