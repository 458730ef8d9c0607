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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"appliance/compress"
	"appliance/internal/httpx"
	"appliance/vhost"
)

// Options are a site's serving rules; the zero value serves index.html,
// no listings, follows symbolic links that stay inside the root and sends
// "Cache-Control: no-cache".
type Options struct {
	Index           []string          // index file names tried in a directory; nil: index.html
	ErrorPages      map[int]string    // status -> URL path of the page to send
	CleanURLs       bool              // /about serves about.html
	ListDirectories bool              // HTML or JSON listing of directories without an index
	CacheControl    string            // default Cache-Control of every file response; "": no-cache
	RefuseSymlinks  bool              // refuse every symbolic link, even inside the root
	Types           map[string]string // extra ".ext" -> media type
	WriteTimeout    time.Duration     // idle limit while sending a large body

	// Encodings are the content codings offered besides identity; zero
	// offers all, compress.SetOf(compress.Identity) none.
	Encodings        compress.Set
	CompressMinBytes int64 // smaller files are not compressed; default 512
	NoSidecars       bool  // do not look for precompressed app.js.br and friends

	// RedirectCacheControl is the Cache-Control of the permanent redirect
	// of a directory without its slash; "" is
	// httpx.DefaultRedirectCacheControl.
	RedirectCacheControl string

	// ReprDigest sends Repr-Digest (SHA-256) on every 200 and 206 of a
	// representation with fixed bytes, unless the client refuses it;
	// false sends it only to clients that ask (Want-Repr-Digest).
	ReprDigest bool
	// Hidden are file names in the root that are answered as missing
	// (the site's rules files), in any letter case.
	Hidden []string

	// Languages, when set, makes NAME.TAG files the language variants of
	// NAME for each TAG listed (see language.go); DefaultLanguage, one of
	// them (the first if empty), is served when the client accepts none.
	Languages       []string
	DefaultLanguage string
}

// defaultCompressMinBytes: below this, compression saves less than the
// headers it adds.
const defaultCompressMinBytes = 512

// defaultCacheControl makes caches revalidate with the ETag on every use,
// so a deploy shows at once.
const defaultCacheControl = "no-cache"

var siteIDs atomic.Uint64

// Handler serves one site's document root.
type Handler struct {
	fsys  fs.FS
	opts  Options
	cache *Cache
	id    uint64

	cacheControl    []string
	redirectControl []string   // Cache-Control of the directory redirect
	langs           []string   // Options.Languages, the default first
	langHeader      [][]string // their Content-Language values
}

// New returns a handler serving fsys with opts, keeping its entries in cache.
func New(fsys fs.FS, opts Options, cache *Cache) *Handler {
	if len(opts.Index) == 0 {
		opts.Index = []string{"index.html"}
	}
	if opts.CacheControl == "" {
		opts.CacheControl = defaultCacheControl
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Minute
	}
	if opts.Encodings == 0 {
		opts.Encodings = compress.All
	}
	opts.Encodings = opts.Encodings.With(compress.Identity)
	if opts.CompressMinBytes <= 0 {
		opts.CompressMinBytes = defaultCompressMinBytes
	}
	langs, langHeader := languageOrder(opts.Languages, opts.DefaultLanguage)
	return &Handler{
		fsys:            fsys,
		opts:            opts,
		cache:           cache,
		id:              siteIDs.Add(1),
		cacheControl:    []string{opts.CacheControl},
		redirectControl: httpx.Permanent(opts.RedirectCacheControl),
		langs:           langs,
		langHeader:      langHeader,
	}
}

// Shared header values; net/http only reads them.
var (
	hdrAllow      = []string{"GET, HEAD, OPTIONS"}
	hdrBytes      = []string{"bytes"}
	hdrNosniff    = []string{"nosniff"}
	hdrNoCache    = []string{"no-cache"}
	hdrTextHTML   = []string{"text/html; charset=utf-8"}
	hdrVary       = []string{"Accept-Encoding"}
	hdrRetryAfter = []string{"1"}
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
		if !knownMethod(r.Method) {
			h.serveError(w, r, http.StatusNotImplemented)
			return
		}
		w.Header()["Allow"] = hdrAllow
		h.serveError(w, r, http.StatusMethodNotAllowed)
		return
	}
	p, status := cleanPath(r.URL.Path)
	if status != 0 {
		h.serveError(w, r, status)
		return
	}
	// More tries when a large file changed under us between its lookup and
	// its open: a deploy that swaps releases every 100 ms raced two tries.
	for range 4 {
		k := cacheKey{h.id, p}
		e := h.lookup(k)
		switch e.kind {
		case kindFile:
			if !h.serveFile(w, r, k, e) {
				h.cache.remove(k, e)
				continue
			}
		case kindRedirect:
			h.serveDirectoryRedirect(w, r, p)
		case kindListing:
			h.serveListing(w, r, e.name, p)
		default:
			h.serveError(w, r, http.StatusNotFound)
		}
		return
	}
	h.serveError(w, r, http.StatusServiceUnavailable)
}

// Purge drops the cached entries of this handler's site, as when its
// root has become another release; the other sites' stay.
func (h *Handler) Purge() { h.cache.purgeSite(h.id) }

// lookup returns the entry for a clean URL path, resolving or revalidating
// it against the file system when it is missing or due.
func (h *Handler) lookup(k cacheKey) *entry {
	now := h.cache.now()
	e := h.cache.get(k, now)
	if e != nil && e.fresh(now, h.cache.opts.Revalidate) {
		h.cache.hits.Add(1)
		return e
	}
	res := h.resolve(k.path)
	if res.kind == kindFile {
		res.side = h.statSidecars(res.name, res.id)
		for i := range res.langs {
			if lf := &res.langs[i]; lf.name == res.name {
				lf.side = res.side // the variant served by default: just statted
			} else {
				lf.side = h.statSidecars(lf.name, lf.id)
			}
		}
	}
	if e != nil && res.kind == e.kind && res.name == e.name && res.id == e.id && res.side == e.side && slices.Equal(res.langs, e.langs) {
		return e // unchanged: the check is recorded, nothing is rebuilt
	}
	return h.cache.rebuild(k, e, func() *entry {
		ne := &entry{kind: res.kind, name: res.name, id: res.id, side: res.side}
		if len(res.langs) > 0 {
			ne = h.languageEntry(ne, res)
		} else if res.kind == kindFile {
			rep, err := loadRepresentation(h.fsys, res.name, h.cache, h.opts.Types)
			if err != nil {
				ne = &entry{kind: kindNotFound}
			} else {
				rep.prepareHeader()
				ne.rep, ne.id = rep, rep.id
				h.setOffered(rep, res.side)
			}
		}
		ne.checked.Store(now)
		ne.used.Store(now)
		return ne
	})
}

type resolution struct {
	kind  kind
	name  string
	id    fileID
	side  sidecarIDs
	langs []langFile // language variants, the default first; nil if none
}

// sidecarIDs are the identities of a file's precompressed sidecars
// (app.js.zst, .br, .gz); zero where there is none. Two compare equal
// when no sidecar appeared, went or changed.
type sidecarIDs struct {
	zstd, br, gzip fileID
}

// sidecarCodings are the codings a file may have a sidecar in.
var sidecarCodings = [...]compress.Coding{compress.Zstd, compress.Brotli, compress.Gzip}

// of returns where the identity of the sidecar in coding c, one of
// sidecarCodings, is kept.
func (s *sidecarIDs) of(c compress.Coding) *fileID {
	switch c {
	case compress.Zstd:
		return &s.zstd
	case compress.Brotli:
		return &s.br
	}
	return &s.gzip
}

// statSidecars looks for app.js.zst, .br and .gz beside a file. A sidecar
// older than the file is stale and ignored.
func (h *Handler) statSidecars(name string, base fileID) sidecarIDs {
	var side sidecarIDs
	if h.opts.NoSidecars {
		return side
	}
	for _, c := range sidecarCodings {
		if !h.opts.Encodings.Has(c) {
			continue
		}
		if fi, err := h.stat(name + c.Sidecar()); err == nil && fi.Mode().IsRegular() && fi.ModTime().UnixNano() >= base.mtime {
			*side.of(c) = idOf(fi)
		}
	}
	return side
}

// setOffered records the codings rep may be served in: the site's codings
// if it is worth compressing, and those of its sidecars.
func (h *Handler) setOffered(rep *representation, side sidecarIDs) {
	if h.compressible(rep) {
		rep.offered = h.opts.Encodings
	}
	for _, c := range sidecarCodings {
		if *side.of(c) != (fileID{}) {
			rep.sidecars[c] = rep.Name + c.Sidecar()
			rep.offered = rep.offered.With(c)
		}
	}
	if rep.offered == compress.SetOf(compress.Identity) {
		rep.offered = 0
	}
}

// resolve maps a clean URL path to what it names in the root, in the
// order: the file itself, a directory (redirect, index files, listing),
// then name.html when clean URLs are on.
func (h *Handler) resolve(p string) resolution {
	name := fsName(p)
	if h.hidden(name) {
		return resolution{kind: kindNotFound}
	}
	slash := strings.HasSuffix(p, "/")
	fi, err := h.stat(name)
	switch {
	case err == nil && fi.IsDir():
		if !slash && p != "/" {
			return resolution{kind: kindRedirect, name: name}
		}
		for _, idx := range h.opts.Index {
			if res, ok := h.file(path.Join(name, idx)); ok {
				return res
			}
		}
		if h.opts.ListDirectories {
			return resolution{kind: kindListing, name: name}
		}
	case err == nil && fi.Mode().IsRegular():
		if !slash {
			return h.withLanguages(resolution{kind: kindFile, name: name, id: idOf(fi)}, name)
		}
	case err != nil && !slash:
		if res := h.withLanguages(resolution{kind: kindNotFound}, name); res.kind == kindFile {
			return res
		}
		if h.opts.CleanURLs && path.Ext(name) == "" {
			if res, ok := h.file(name + ".html"); ok {
				return res
			}
		}
	}
	return resolution{kind: kindNotFound}
}

// hidden reports whether name is one of Options.Hidden.
func (h *Handler) hidden(name string) bool {
	for _, n := range h.opts.Hidden {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
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
func (h *Handler) setRepresentationHeader(hd http.Header, rep *representation) {
	hd["Etag"] = rep.header.etag
	if rep.header.lastModified != nil {
		hd["Last-Modified"] = rep.header.lastModified
	}
	hd["Cache-Control"] = h.cacheControl
	hd["X-Content-Type-Options"] = hdrNosniff
}

// serveFile answers a GET or HEAD for the file of entry e. It returns
// false, having written nothing, if the file on disk no longer matches.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, k cacheKey, e *entry) bool {
	base, lang := h.chooseLanguage(r, e)
	hd := w.Header()
	if base.offered != 0 {
		hd["Vary"] = hdrVary // on every response about it: 200, 206, 304, 412
	}
	if lang != nil {
		hd["Vary"] = e.vary
	}
	rep, res, status := h.negotiate(r, k, e, base)
	if res != nil {
		defer res.Release() // if no encoder was made from it
	}
	if rep == nil {
		h.serveRefusal(w, r, status)
		return true
	}
	h.setRepresentationHeader(hd, rep)
	v := validators{ETag: rep.ETag, ModTime: rep.ModTime}
	if t := base.tags.Load(); t != nil {
		v.Current = *t
	}
	if h.servePreconditions(w, r, rep, v) {
		return true
	}
	ranges, done := h.requestedRanges(w, r, rep, v)
	if done {
		return true
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
	if rep.header.contentEncoding != nil {
		hd["Content-Encoding"] = rep.header.contentEncoding
	}
	if rep.header.reprDigest != nil && sendDigest(r, h.opts.ReprDigest) {
		hd["Repr-Digest"] = rep.header.reprDigest // of the whole representation, also in a 206
	}
	if lang != nil {
		hd["Content-Language"] = lang
	}
	switch len(ranges) {
	case 0:
		h.serveWhole(w, r, rep, body, res)
	case 1:
		h.serveRange(w, rep, ranges[0], body)
	default:
		h.serveMultipart(w, rep, ranges, body)
	}
	return true
}

// serveRefusal answers a request that no representation of the file is
// acceptable for (406), or that only one the encoders are too busy to
// build is (503).
func (h *Handler) serveRefusal(w http.ResponseWriter, r *http.Request, status int) {
	hd := w.Header()
	hd["Vary"] = varyEncoding(hd["Vary"]) // the refusal depends on Accept-Encoding too
	if status == http.StatusServiceUnavailable {
		hd["Retry-After"] = hdrRetryAfter // encoders busy, identity refused
	}
	h.serveError(w, r, status)
}

// servePreconditions evaluates the request's preconditions against v
// (RFC 9110 section 13.2.2) and, when they decide the response, sends
// 304 Not Modified or 412 Precondition Failed and returns true.
func (h *Handler) servePreconditions(w http.ResponseWriter, r *http.Request, rep *representation, v validators) bool {
	switch status, tag := checkPreconditions(r.Method, r.Header, v); status {
	case http.StatusNotModified:
		if tag != rep.ETag {
			w.Header()["Etag"] = []string{tag} // the representation the client holds
		}
		w.WriteHeader(http.StatusNotModified)
		return true
	case http.StatusPreconditionFailed:
		h.serveError(w, r, http.StatusPreconditionFailed)
		return true
	}
	return false
}

// requestedRanges returns the ranges of rep a GET asks for (RFC 9110
// section 14), nil for the whole representation: when rep cannot be served
// in ranges, the Range field is absent, repeated or ignored, or an
// If-Range condition is false. If no range is satisfiable, it sends 416
// and returns done.
func (h *Handler) requestedRanges(w http.ResponseWriter, r *http.Request, rep *representation, v validators) (ranges []byteRange, done bool) {
	if rep.stream {
		return nil, false
	}
	hd := w.Header()
	hd["Accept-Ranges"] = hdrBytes
	rh := r.Header["Range"]
	if len(rh) != 1 || r.Method != http.MethodGet ||
		checkIfRange(r.Header["If-Range"], v) == condFalse {
		return nil, false
	}
	ranges, err := parseRange(rh[0], rep.Size)
	if err == errUnsatisfiable {
		hd["Content-Range"] = []string{"bytes */" + strconv.FormatInt(rep.Size, 10)}
		h.serveError(w, r, http.StatusRequestedRangeNotSatisfiable)
		return nil, true
	}
	return ranges, false
}

// serveWhole sends rep whole with 200 OK: from its bytes in memory,
// compressed from body as it is read, or from body as it is.
func (h *Handler) serveWhole(w http.ResponseWriter, r *http.Request, rep *representation, body io.ReadSeeker, res *compress.Reservation) {
	hd := w.Header()
	hd["Content-Type"] = rep.header.contentType
	if rep.header.contentLength != nil {
		hd["Content-Length"] = rep.header.contentLength
	}
	w.WriteHeader(http.StatusOK)
	switch {
	case r.Method == http.MethodHead:
	case rep.Data != nil:
		w.Write(rep.Data)
	case rep.stream:
		h.streamBody(w, body, res)
	default:
		h.copyBody(w, w, body, rep.Size)
	}
}

// serveRange sends one range of rep with 206 Partial Content.
func (h *Handler) serveRange(w http.ResponseWriter, rep *representation, rg byteRange, body io.ReadSeeker) {
	hd := w.Header()
	hd["Content-Type"] = rep.header.contentType
	hd["Content-Range"] = []string{rg.contentRange(rep.Size)}
	hd["Content-Length"] = []string{strconv.FormatInt(rg.length, 10)}
	w.WriteHeader(http.StatusPartialContent)
	if rep.Data != nil {
		w.Write(rep.Data[rg.start:rg.end()])
		return
	}
	if _, err := body.Seek(rg.start, io.SeekStart); err == nil {
		h.copyBody(w, w, body, rg.length)
	}
}

// open opens a large file and checks that it is still the version rep
// describes.
func (h *Handler) open(rep *representation) (fs.File, bool) {
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

// copyBody sends n bytes of f (all of it if n < 0) to dst, renewing w's
// write deadline for every chunk. With dst == w, an *os.File goes out
// with sendfile.
func (h *Handler) copyBody(w http.ResponseWriter, dst io.Writer, f io.Reader, n int64) {
	rc := http.NewResponseController(w)
	for n != 0 {
		rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
		chunk := int64(copyChunk)
		if n > 0 {
			chunk = min(n, chunk)
		}
		c, err := io.CopyN(dst, f, chunk)
		if n > 0 {
			n -= c
		}
		if err != nil || c < chunk {
			return
		}
	}
}

// serveDirectoryRedirect sends a directory named without its trailing
// slash to the name with it, query kept: a permanent redirect, cacheable
// for the site's redirect lifetime, with no validator (there is no
// representation it could name).
func (h *Handler) serveDirectoryRedirect(w http.ResponseWriter, r *http.Request, p string) {
	hd := w.Header()
	hd["Location"] = []string{(&url.URL{Path: p + "/", RawQuery: r.URL.RawQuery}).String()}
	hd["Cache-Control"] = httpx.RedirectCacheControl(http.StatusMovedPermanently, h.redirectControl)
	vhost.Error(w, r, http.StatusMovedPermanently)
}

// serveError answers with status, using the site's error page for it when
// one is configured and exists.
func (h *Handler) serveError(w http.ResponseWriter, r *http.Request, status int) {
	h.ServePage(w, r, h.opts.ErrorPages[status], status)
}

// ServePage answers with status and the site's file at the URL path page
// as the body: an error page, a fixed response, the maintenance page. A
// page that is missing, or too large to be held in the cache
// (max_file_bytes), gives the plain body of status instead; so does "".
func (h *Handler) ServePage(w http.ResponseWriter, r *http.Request, page string, status int) {
	hd := w.Header()
	for _, k := range []string{"Etag", "Last-Modified", "Accept-Ranges"} {
		delete(hd, k)
	}
	hd["Cache-Control"] = hdrNoCache
	hd["X-Content-Type-Options"] = hdrNosniff
	if page != "" {
		if e := h.lookup(cacheKey{h.id, page}); e.kind == kindFile && e.rep.Data != nil {
			rep := h.errorPage(w, r, e)
			hd["Content-Type"] = rep.header.contentType
			hd["Content-Length"] = rep.header.contentLength
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				w.Write(rep.Data)
			}
			return
		}
	}
	vhost.Error(w, r, status)
}

// Exists reports whether a URL path names a file or a directory of the
// site, and which, from the same cache that serves it; the rewrite rules'
// file conditions and fallback use it.
func (h *Handler) Exists(p string) (exists, dir bool) {
	cp, status := cleanPath(p)
	if status != 0 {
		return false, false
	}
	switch h.lookup(cacheKey{h.id, cp}).kind {
	case kindFile:
		return true, strings.HasSuffix(cp, "/")
	case kindRedirect, kindListing:
		return true, true
	}
	return false, false
}
