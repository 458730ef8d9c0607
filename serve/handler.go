// Package serve answers requests for a site's files as RFC 9110 says:
// methods, validators and conditional requests, ranges, content types,
// error pages, directory redirects and listings, and the safety rules that
// keep every name inside the site root.
package serve

import (
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options are a site's serving rules; the zero value serves index.html,
// no listings, follows symbolic links that stay inside the root and sends
// "Cache-Control: no-cache".
type Options struct {
	Index           []string          // index file names tried in a directory
	ErrorPages      map[int]string    // status -> URL path of the page to send
	CleanURLs       bool              // /about serves about.html
	ListDirectories bool              // HTML listing of directories without an index
	CacheControl    string            // default Cache-Control of every file response
	RefuseSymlinks  bool              // refuse every symbolic link, even inside the root
	Types           map[string]string // extra ".ext" -> media type
	WriteTimeout    time.Duration     // idle limit while sending a large body
}

// DefaultCacheControl makes caches revalidate with the ETag on every use,
// so a deploy shows at once.
const DefaultCacheControl = "no-cache"

var siteIDs atomic.Uint64

// Handler serves one site's document root.
type Handler struct {
	fsys  fs.FS
	opts  Options
	cache *Cache
	id    uint64

	cacheControl []string
}

// New returns a handler serving fsys with opts, keeping its entries in cache.
func New(fsys fs.FS, opts Options, cache *Cache) *Handler {
	if len(opts.Index) == 0 {
		opts.Index = []string{"index.html"}
	}
	if opts.CacheControl == "" {
		opts.CacheControl = DefaultCacheControl
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Minute
	}
	return &Handler{
		fsys:         fsys,
		opts:         opts,
		cache:        cache,
		id:           siteIDs.Add(1),
		cacheControl: []string{opts.CacheControl},
	}
}

// Shared header values; net/http only reads them.
var (
	hdrAllow     = []string{"GET, HEAD, OPTIONS"}
	hdrBytes     = []string{"bytes"}
	hdrNosniff   = []string{"nosniff"}
	hdrNoCache   = []string{"no-cache"}
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
	hdrTextHTML  = []string{"text/html; charset=utf-8"}
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hd := w.Header()
		hd["Allow"] = hdrAllow
		hd["Cache-Control"] = hdrNoCache
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header()["Allow"] = hdrAllow
		h.serveError(w, r, http.StatusMethodNotAllowed)
		return
	}
	p, status := cleanPath(r.URL.Path)
	if status != 0 {
		h.serveError(w, r, status)
		return
	}
	for range 2 { // a second try when a large file changed under us
		e := h.lookup(p)
		switch e.kind {
		case kindFile:
			if !h.serveFile(w, r, e.rep) {
				h.cache.remove(cacheKey{h.id, p}, e)
				continue
			}
		case kindRedirect:
			target := (&url.URL{Path: p + "/", RawQuery: r.URL.RawQuery}).String()
			w.Header()["Location"] = []string{target}
			h.serveError(w, r, http.StatusMovedPermanently)
		case kindListing:
			h.serveListing(w, r, e.name, p)
		default:
			h.serveError(w, r, http.StatusNotFound)
		}
		return
	}
	h.serveError(w, r, http.StatusServiceUnavailable)
}

// lookup returns the entry for a clean URL path, resolving or revalidating
// it against the file system when it is missing or due.
func (h *Handler) lookup(p string) *entry {
	k := cacheKey{h.id, p}
	now := time.Now().UnixNano()
	e := h.cache.get(k, now)
	if e != nil && e.fresh(now, h.cache.opts.Revalidate) {
		return e
	}
	res := h.resolve(p)
	if e != nil && res.kind == e.kind && res.name == e.name && res.id == e.id {
		return e // unchanged: the check is recorded, nothing is rebuilt
	}
	return h.cache.rebuild(k, e, func() *entry {
		ne := &entry{kind: res.kind, name: res.name, id: res.id}
		if res.kind == kindFile {
			rep, err := loadRepresentation(h.fsys, res.name, h.cache.opts.MaxFileBytes, h.opts.Types)
			if err != nil {
				ne = &entry{kind: kindNotFound}
			} else {
				ne.rep, ne.id = rep, rep.id
			}
		}
		ne.checked.Store(now)
		ne.used.Store(now)
		return ne
	})
}

type resolution struct {
	kind kind
	name string
	id   fileID
}

// resolve maps a clean URL path to what it names in the root, in the
// order: the file itself, a directory (redirect, index files, listing),
// then name.html when clean URLs are on.
func (h *Handler) resolve(p string) resolution {
	name := fsName(p)
	slash := strings.HasSuffix(p, "/")
	fi, err := h.stat(name)
	switch {
	case err == nil && fi.IsDir():
		if !slash && p != "/" {
			return resolution{kind: kindRedirect, name: name}
		}
		for _, idx := range h.opts.Index {
			in := path.Join(name, idx)
			if fi, err := h.stat(in); err == nil && fi.Mode().IsRegular() {
				return resolution{kind: kindFile, name: in, id: idOf(fi)}
			}
		}
		if h.opts.ListDirectories {
			return resolution{kind: kindListing, name: name}
		}
	case err == nil && fi.Mode().IsRegular():
		if !slash {
			return resolution{kind: kindFile, name: name, id: idOf(fi)}
		}
	case err != nil && h.opts.CleanURLs && !slash && path.Ext(name) == "":
		if fi, err := h.stat(name + ".html"); err == nil && fi.Mode().IsRegular() {
			return resolution{kind: kindFile, name: name + ".html", id: idOf(fi)}
		}
	}
	return resolution{kind: kindNotFound}
}

// stat follows symbolic links inside the root, or refuses any link on the
// way when the site says so.
func (h *Handler) stat(name string) (fs.FileInfo, error) {
	if h.opts.RefuseSymlinks && name != "." {
		for i := 0; i <= len(name); i++ {
			if i == len(name) || name[i] == '/' {
				fi, err := fs.Lstat(h.fsys, name[:i])
				if err != nil {
					return nil, err
				}
				if fi.Mode()&fs.ModeSymlink != 0 {
					return nil, fs.ErrNotExist
				}
			}
		}
	}
	return fs.Stat(h.fsys, name)
}

// setRepresentationHeader sets the headers that describe rep on every
// response about it, 304 included.
func (h *Handler) setRepresentationHeader(hd http.Header, rep *Representation) {
	hd["Etag"] = rep.header.etag
	if rep.header.lastModified != nil {
		hd["Last-Modified"] = rep.header.lastModified
	}
	hd["Cache-Control"] = h.cacheControl
	hd["X-Content-Type-Options"] = hdrNosniff
}

// serveFile answers a GET or HEAD for rep. It returns false, having written
// nothing, if a large file on disk no longer matches rep.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, rep *Representation) bool {
	hd := w.Header()
	h.setRepresentationHeader(hd, rep)
	switch checkPreconditions(r.Method, r.Header, rep.Validators()) {
	case http.StatusNotModified:
		w.WriteHeader(http.StatusNotModified)
		return true
	case http.StatusPreconditionFailed:
		h.serveError(w, r, http.StatusPreconditionFailed)
		return true
	}
	hd["Accept-Ranges"] = hdrBytes

	var ranges []byteRange
	if rh := r.Header["Range"]; len(rh) == 1 && r.Method == http.MethodGet &&
		checkIfRange(r.Header["If-Range"], rep.Validators()) != condFalse {
		var err error
		if ranges, err = parseRange(rh[0], rep.Size); err == errUnsatisfiable {
			hd["Content-Range"] = []string{"bytes */" + strconv.FormatInt(rep.Size, 10)}
			h.serveError(w, r, http.StatusRequestedRangeNotSatisfiable)
			return true
		}
	}

	var body io.ReadSeeker
	if rep.Data == nil && r.Method != http.MethodHead {
		f, ok := h.open(rep)
		if !ok {
			for k := range hd {
				delete(hd, k)
			}
			return false
		}
		defer f.Close()
		rs, ok := f.(io.ReadSeeker)
		if !ok {
			return false
		}
		body = rs
	}
	switch len(ranges) {
	case 0:
		hd["Content-Type"] = rep.header.contentType
		hd["Content-Length"] = rep.header.contentLength
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return true
		}
		if rep.Data != nil {
			w.Write(rep.Data)
			return true
		}
		h.copyBody(w, body, rep.Size)
	case 1:
		rg := ranges[0]
		hd["Content-Type"] = rep.header.contentType
		hd["Content-Range"] = []string{rg.contentRange(rep.Size)}
		hd["Content-Length"] = []string{strconv.FormatInt(rg.length, 10)}
		w.WriteHeader(http.StatusPartialContent)
		if rep.Data != nil {
			w.Write(rep.Data[rg.start:rg.end()])
			return true
		}
		if _, err := body.Seek(rg.start, io.SeekStart); err == nil {
			h.copyBody(w, body, rg.length)
		}
	default:
		h.serveMultipart(w, rep, ranges, body)
	}
	return true
}

// open opens a large file and checks that it is still the version rep
// describes.
func (h *Handler) open(rep *Representation) (fs.File, bool) {
	f, err := h.fsys.Open(rep.Name)
	if err != nil {
		return nil, false
	}
	fi, err := f.Stat()
	if err != nil || idOf(fi) != rep.id {
		f.Close()
		return nil, false
	}
	return f, true
}

// copyChunk bounds each write of a large body, so that the write deadline
// limits idleness rather than the whole transfer.
const copyChunk = 1 << 20

// copyBody sends n bytes of f; an *os.File goes out with sendfile.
func (h *Handler) copyBody(w http.ResponseWriter, f io.Reader, n int64) {
	rc := http.NewResponseController(w)
	for n > 0 {
		rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
		c, err := io.CopyN(w, f, min(n, copyChunk))
		n -= c
		if err != nil {
			return
		}
	}
}

// serveError answers with status, using the site's error page for it when
// one is configured and exists.
func (h *Handler) serveError(w http.ResponseWriter, r *http.Request, status int) {
	hd := w.Header()
	for _, k := range []string{"Etag", "Last-Modified", "Accept-Ranges"} {
		delete(hd, k)
	}
	hd["Cache-Control"] = hdrNoCache
	hd["X-Content-Type-Options"] = hdrNosniff
	if page, ok := h.opts.ErrorPages[status]; ok {
		if e := h.lookup(page); e.kind == kindFile && e.rep.Data != nil {
			hd["Content-Type"] = e.rep.header.contentType
			hd["Content-Length"] = e.rep.header.contentLength
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				w.Write(e.rep.Data)
			}
			return
		}
	}
	body := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	hd["Content-Type"] = hdrTextPlain
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}
