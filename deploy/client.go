package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client talks to a site's deploy endpoint.
type Client struct {
	Site  *url.URL     // the site: https://example.test/
	Token string       // the deploy token; "": none (a client certificate in HTTP's TLS configuration)
	HTTP  *http.Client // nil: http.DefaultClient
	// Plan, when set, is told what will be uploaded, before it is;
	// Progress, each uploaded file's size.
	Plan     func(files int, bytes int64)
	Progress func(bytes int64)
	// Parallel uploads; 0: defaultMaxUploads.
	Parallel int

	mu    sync.Mutex
	moved *url.URL // where a redirect of the site (http to https) led
}

// CheckURL refuses a site URL that is not https://, except to loopback,
// and one with more than the scheme, host and port that name a site.
func CheckURL(u *url.URL) error {
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%s: a site is named by scheme, host and port only (https://example.test/), not a path", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || loopback(h) {
			return nil
		}
		return fmt.Errorf("%s: deploys go over HTTPS (http:// only to loopback), so the token and the content cannot be read or changed on the way", u.Redacted())
	}
	return fmt.Errorf("%q: want an https:// URL", u.String())
}

// Local is a manifest of a local directory, with where each blob's
// content is.
type Local struct {
	Manifest
	Source  map[string]string // sha256 -> a file with that content
	Skipped []string          // the version control directories left out (VCSNames), slash-separated
}

// VCSNames are the version control directories (or, for a Git worktree
// or submodule, files) that Scan leaves out, wherever they are in dir.
var VCSNames = []string{".git", ".hg", ".svn"}

// Scan builds the manifest of dir, without its version control
// directories (VCSNames, listed in Skipped). Relative symbolic links
// that stay in dir are followed (the file they name is sent under the
// link's path); absolute, dangling or escaping links, links to
// directories, and anything but regular files and directories are
// refused.
func Scan(dir string) (Local, error) { return scan(dir, false) }

// ScanWithVCS is Scan keeping the version control directories.
func ScanWithVCS(dir string) (Local, error) { return scan(dir, true) }

func scan(dir string, withVCS bool) (Local, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Local{}, err
	}
	if fi, err := os.Stat(root); err != nil {
		return Local{}, err
	} else if !fi.IsDir() {
		return Local{}, fmt.Errorf("%s is not a folder: DIR must be a folder, whose files make the release", dir)
	}
	l := Local{Source: map[string]string{}}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !withVCS && slices.Contains(VCSNames, d.Name()) {
			l.Skipped = append(l.Skipped, filepath.ToSlash(rel))
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		src := p
		if d.Type()&fs.ModeSymlink != 0 {
			if src, err = checkLink(root, p); err != nil {
				return err
			}
		}
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return fmt.Errorf("%s: a symbolic link to a directory; link the files instead", p)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file (%s)", p, fi.Mode().Type())
		}
		sum, err := hashFile(src)
		if err != nil {
			return err
		}
		l.Files = append(l.Files, File{Path: filepath.ToSlash(rel), Size: fi.Size(), Mode: uint32(fi.Mode().Perm()), SHA256: sum})
		l.Source[sum] = src
		return nil
	})
	return l, err
}

// checkLink returns what the link p names, refusing absolute, dangling
// and escaping links.
func checkLink(root, p string) (string, error) {
	t, err := os.Readlink(p)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(t) {
		return "", fmt.Errorf("%s: an absolute symbolic link (to %s)", p, t)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%s: a dangling symbolic link (to %s)", p, t)
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: a symbolic link out of the directory (to %s)", p, t)
	}
	return real, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Result is what a deploy did.
type Result struct {
	Release       Release
	Unchanged     bool  // Release was live already: the same files
	Uploaded      int   // files (blobs) sent
	UploadedBytes int64 // the bytes sent of them
	ResumedBytes  int64 // the bytes of them not sent again: a cut-off upload had left them on the server
}

// Deploy publishes l: it sends the manifest, uploads the blobs the
// server lacks, then commits. Interrupted, it can be run again: what
// was uploaded stays and is not sent twice, not even the part of a file
// whose upload was cut off.
func (c *Client) Deploy(ctx context.Context, l Local) (Result, error) {
	var res Result
	body, err := json.Marshal(l.Manifest)
	if err != nil {
		return res, err
	}
	var ans struct {
		Missing []string         `json:"missing"`
		Offsets map[string]int64 `json:"offsets"`
	}
	if _, err := c.call(ctx, http.MethodPost, "manifest", body, &ans, http.StatusOK); err != nil {
		return res, err
	}
	if c.Plan != nil {
		size := map[string]int64{}
		for _, f := range l.Files {
			size[f.SHA256] = f.Size
		}
		var total int64
		for _, m := range ans.Missing {
			total += max(0, size[m]-ans.Offsets[m])
		}
		c.Plan(len(ans.Missing), total)
	}
	for attempt := 0; ; attempt++ {
		err := c.upload(ctx, l, ans.Missing, ans.Offsets, &res)
		if err != nil {
			return res, err
		}
		code, err := c.call(ctx, http.MethodPost, "releases", body, &res.Release, http.StatusCreated, http.StatusOK)
		res.Unchanged = err == nil && code == http.StatusOK
		var se *StatusError
		if err == nil || attempt == 2 || !errors.As(err, &se) || se.Code != http.StatusConflict || len(se.Missing) == 0 {
			return res, err
		}
		ans.Missing, ans.Offsets = se.Missing, nil // collected meanwhile: send them again
	}
}

// upload sends the blobs sums, Parallel at a time, each from the
// offset the server holds of it (offsets, then asked again on a retry),
// each retried a few times when the server is busy or the connection
// drops; it adds what it sent to res.
func (c *Client) upload(ctx context.Context, l Local, sums []string, offsets map[string]int64, res *Result) error {
	par := c.Parallel
	if par <= 0 {
		par = defaultMaxUploads
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	work := make(chan string)
	for range par {
		wg.Go(func() {
			for sum := range work {
				sent, resumed, err := c.uploadOne(ctx, l.Source[sum], sum, offsets[sum])
				mu.Lock()
				if err != nil && first == nil {
					first = err
				} else if err == nil {
					res.Uploaded++
					res.UploadedBytes += sent
					res.ResumedBytes += resumed
					if c.Progress != nil {
						c.Progress(sent)
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, s := range sums {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		work <- s
	}
	close(work)
	wg.Wait()
	return first
}

// uploadOne sends the blob sum from the file src, from offset (what
// the server holds of it): the bytes sent and those it did not send
// again. On a retry it asks the server where to resume (HEAD); a 409
// tells it too.
func (c *Client) uploadOne(ctx context.Context, src, sum string, offset int64) (sent, resumed int64, err error) {
	if src == "" {
		return 0, 0, fmt.Errorf("the server asked for %s, which is not in the manifest", sum)
	}
	for attempt := range 5 {
		var se *StatusError
		if attempt > 0 && !(errors.As(err, &se) && (se.Code == http.StatusConflict || se.Code == http.StatusBadRequest)) {
			select {
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
			if offset, err = c.offset(ctx, sum); err != nil {
				continue
			}
		}
		if sent, err = c.sendBlob(ctx, src, sum, offset); err == nil {
			return sent, offset, nil
		}
		switch {
		case !errors.As(err, &se): // the connection: try again
		case se.Code == http.StatusConflict && se.Offset != nil:
			offset = *se.Offset // resume where the server says
		case se.Code == http.StatusBadRequest && offset > 0:
			offset = 0 // the kept part was not this file's (the server dropped it): send it whole
		case se.Code != http.StatusServiceUnavailable:
			return 0, 0, err // the server said no; asking again will not help
		}
	}
	return 0, 0, err
}

// sendBlob sends the file src, from offset, as the blob sum.
func (c *Client) sendBlob(ctx context.Context, src, sum string, offset int64) (int64, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if offset < 0 || offset > fi.Size() {
		offset = 0 // not this file's: send it whole
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	var hdr http.Header
	if offset > 0 {
		hdr = http.Header{offsetField: {strconv.FormatInt(offset, 10)}}
	}
	_, _, err = c.send(ctx, http.MethodPut, "blobs/"+sum, hdr, f, fi.Size()-offset, nil, http.StatusNoContent)
	return fi.Size() - offset, err
}

// offset asks the server how many bytes of the blob sum it holds.
func (c *Client) offset(ctx context.Context, sum string) (int64, error) {
	_, hdr, err := c.send(ctx, http.MethodHead, "blobs/"+sum, nil, nil, 0, nil, http.StatusNoContent)
	if err != nil {
		return 0, err
	}
	return parseOffset(hdr.Values(offsetField))
}

// Releases lists the site's releases, newest first.
func (c *Client) Releases(ctx context.Context) ([]Release, error) {
	var ans struct {
		Releases []Release `json:"releases"`
	}
	_, err := c.call(ctx, http.MethodGet, "releases", nil, &ans, http.StatusOK)
	return ans.Releases, err
}

// Rollback activates the release before the active one.
func (c *Client) Rollback(ctx context.Context) (Release, error) {
	var rel Release
	_, err := c.call(ctx, http.MethodPost, "rollback", nil, &rel, http.StatusOK)
	return rel, err
}

// StatusError is an answer other than the one expected.
type StatusError struct {
	Code    int
	Message string
	Missing []string
	Offset  *int64 // a 409's: where to resume an upload
}

func (e *StatusError) Error() string {
	status := fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
	if e.Message == "" || e.Message == status {
		return status
	}
	return status + ": " + e.Message
}

// NotDeployableError: what answered at the site's URL is not a deploy
// endpoint (a 404 or 405 of the site's own, or of no site): the site has
// no deploy_token, or the URL names another site.
type NotDeployableError struct {
	Site *url.URL
	Code int
}

func (e *NotDeployableError) Error() string {
	msg := fmt.Sprintf("%s takes no deploys: the site has no deploy_token or deploy_client_ca (or the URL names another site); it answered %d %s",
		e.Site.Redacted(), e.Code, http.StatusText(e.Code))
	if net.ParseIP(strings.Trim(e.Site.Hostname(), "[]")) != nil {
		msg += "; the URL is an address: a site with hosts is found by its name, so use the name (or a catch-all site)"
	}
	return msg
}

// withHint adds what to do to a certificate error of the site's
// HTTPS: a private CA's certificate (tls = "local") is trusted with
// -ca.
func withHint(err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (is the site's certificate from a private CA? then give it with -ca FILE; appliance ca-cert -config FILE prints a tls = \"local\" server's)", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%w (the URL must name one of the site's hosts)", err)
	}
	return err
}

// Reached is the site's URL as the server answered it: Site, or where a
// redirect of it led (http:// to https://, another port).
func (c *Client) Reached() *url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moved != nil {
		return c.moved
	}
	return c.Site
}

// followed notes that a request to base was answered at final, after
// redirects: requests from now on go there directly, if it is the same
// host (a redirect elsewhere is not trusted with the token: the HTTP
// client drops it too).
func (c *Client) followed(base, final *url.URL) {
	if final.Scheme == base.Scheme && final.Host == base.Host || final.Hostname() != base.Hostname() {
		return
	}
	u := &url.URL{Scheme: final.Scheme, Host: final.Host, Path: "/"}
	if CheckURL(u) != nil {
		return
	}
	c.mu.Lock()
	c.moved = u
	c.mu.Unlock()
}

// httpClient is c.HTTP (or http.DefaultClient) refusing a redirect to
// a URL CheckURL refuses: the HTTP client would send the token along to
// the same host name, over plain HTTP too.
func (c *Client) httpClient() *http.Client {
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := CheckURL(&url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host}); err != nil {
			return fmt.Errorf("redirected: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &hc
}

// call sends body to the operation op, expecting one of the statuses
// want, whose body it decodes into out (unless nil); it returns the
// status.
func (c *Client) call(ctx context.Context, method, op string, body []byte, out any, want ...int) (int, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	code, _, err := c.send(ctx, method, op, nil, r, int64(len(body)), out, want...)
	return code, err
}

// send is call with the fields hdr, a body of size bytes read from
// body, and the answer's fields returned.
func (c *Client) send(ctx context.Context, method, op string, hdr http.Header, body io.Reader, size int64, out any, want ...int) (int, http.Header, error) {
	base := c.Reached()
	if err := CheckURL(base); err != nil {
		return 0, nil, err
	}
	u := base.ResolveReference(&url.URL{Path: Prefix + op})
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, nil, withHint(err)
	}
	defer resp.Body.Close()
	c.followed(base, resp.Request.URL)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, err
	}
	if !slices.Contains(want, resp.StatusCode) {
		var e struct {
			Error   string   `json:"error"`
			Missing []string `json:"missing"`
			Offset  *int64   `json:"offset"`
		}
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		ours := mt == "application/json" && json.Unmarshal(data, &e) == nil && e.Error != ""
		if !ours && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
			return 0, nil, &NotDeployableError{Site: c.Reached(), Code: resp.StatusCode}
		}
		if !ours {
			e.Error = strings.TrimSpace(string(data))
		}
		return 0, nil, &StatusError{Code: resp.StatusCode, Message: e.Error, Missing: e.Missing, Offset: e.Offset}
	}
	if out != nil {
		return resp.StatusCode, resp.Header, json.Unmarshal(data, out)
	}
	return resp.StatusCode, resp.Header, nil
}
