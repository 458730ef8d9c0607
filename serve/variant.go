package serve

import (
	"crypto/sha256"
	"io"
	"net/http"
	"net/url"
	"strings"

	"appliance/compress"
	"appliance/vhost"
)

// variant returns base in coding c, building it the first time (from a
// precompressed sidecar, or by compressing once) and charging its bytes
// to the cache entry e. A coding that does not make the file smaller
// yields base itself.
func (h *Handler) variant(k cacheKey, e *entry, base *representation, c compress.Coding) *representation {
	if c == compress.Identity {
		return base
	}
	slot := &base.variants[c]
	slot.once.Do(func() {
		v := h.buildVariant(base, c)
		slot.rep = v
		if v != base {
			base.addTag(v.ETag)
			h.cache.grow(k, e, int64(len(v.Data)))
		}
	})
	return slot.rep
}

func (h *Handler) buildVariant(base *representation, c compress.Coding) *representation {
	if name := base.sidecars[c]; name != "" {
		v, err := loadRepresentation(h.fsys, name, h.cache, nil)
		if err == nil {
			v.ContentType, v.ModTime, v.Coding = base.ContentType, base.ModTime, c
			v.ETag = v.ETag[:len(v.ETag)-1] + base.tagSuffix(c) + `"`
			v.prepareHeader()
			return v
		}
	}
	if !h.compressible(base) {
		return base
	}
	if base.Size > h.cache.opts.MaxCompressBytes {
		v := &representation{
			Name: base.Name, Size: -1, ModTime: base.ModTime, ContentType: base.ContentType,
			Coding: c, id: base.id, stream: true,
			// Weak: the bytes of a stream are not fixed by the file alone.
			ETag: "W/" + base.ETag[:len(base.ETag)-1] + c.ETagSuffix() + `"`,
		}
		v.prepareHeader()
		return v
	}
	src := base.Data
	if src == nil {
		f, ok := h.open(base)
		if !ok {
			return base
		}
		var err error
		src, err = io.ReadAll(io.LimitReader(f, base.Size))
		f.Close()
		if err != nil || int64(len(src)) != base.Size {
			return base
		}
	}
	out, err := compress.Encode(c, src)
	if err != nil || len(out) >= len(src) {
		return base
	}
	sum := sha256.Sum256(out)
	v := &representation{
		Name: base.Name, Size: int64(len(out)), ModTime: base.ModTime, ContentType: base.ContentType,
		Data: out, Coding: c, id: base.id, ETag: etagOf(sum[:], base.tagSuffix(c)), digest: reprDigestOf(sum[:]),
	}
	v.prepareHeader()
	return v
}

// compressible reports whether the handler compresses base itself (a
// sidecar is served whatever the type).
func (h *Handler) compressible(base *representation) bool {
	return base.Size >= h.opts.CompressMinBytes && compress.Compressible(base.ContentType)
}

// negotiate picks the representation of base (e's file or one of its
// language variants) to send. It returns nil and 406 if the client
// accepts none of them. A GET of a stream also gets the reservation of
// its encoder from the streaming budget (see package compress); when the
// budget has no room, the client gets the next representation it
// accepts (gzip rather than brotli, say, or identity), and nil and 503
// if that leaves none.
func (h *Handler) negotiate(r *http.Request, k cacheKey, e *entry, base *representation) (*representation, *compress.Reservation, int) {
	accept := r.Header["Accept-Encoding"]
	if base.offered == 0 && !excludesSomething(accept) {
		return base, nil, 0 // the common case: only identity, and nothing said against it
	}
	offered := base.offered
	if r.TLS != nil && offered != 0 && strings.HasPrefix(base.ContentType, "text/html") && crossSite(r) {
		offered = 0 // see crossSite
	}
	c, ok := compress.Negotiate(accept, offered)
	if !ok && offered != base.offered {
		offered = base.offered
		c, ok = compress.Negotiate(accept, offered) // identity refused
	}
	status := http.StatusNotAcceptable
	for ok {
		v := h.variant(k, e, base, c)
		if !v.stream {
			return v, nil, 0
		}
		if r.Method == http.MethodGet && len(r.Header["Range"]) > 0 {
			// A stream cannot serve a range; identity can, if the client takes it.
			if _, ok := compress.Negotiate(accept, 0); ok {
				return base, nil, 0
			}
		}
		if res := compress.Reserve(c); res != nil {
			if r.Method != http.MethodGet {
				res.Release() // HEAD: the answer a GET would get now, no encoder
				res = nil
			}
			return v, res, 0
		}
		offered &^= compress.SetOf(c) // no room for its encoder: the next best
		c, ok = compress.Negotiate(accept, offered)
		status = http.StatusServiceUnavailable
	}
	return nil, nil, status
}

// streamBody compresses f into w as it is sent, with the encoder res
// holds room for.
func (h *Handler) streamBody(w http.ResponseWriter, f io.Reader, res *compress.Reservation) {
	zw, err := res.NewWriter(w)
	if err != nil {
		return
	}
	h.copyBody(w, zw, f, -1)
	zw.Close()
}

// excludesSomething reports whether Accept-Encoding carries weights, which
// is the only way to refuse identity.
func excludesSomething(accept []string) bool {
	for _, a := range accept {
		if strings.IndexByte(a, '=') >= 0 {
			return true
		}
	}
	return false
}

// crossSite reports whether r was made on another site's behalf in a way
// that site could repeat and measure unseen: an image, a script, a fetch,
// a frame. An HTML page over TLS then goes out uncompressed, which is
// what BREACH needs to be impossible (it guesses a page's secret from
// the compressed length of responses to requests it triggers); a static
// page holds no secret, but a scanner (testssl) cannot know that, and
// neither can the server for pages it did not write. Top-level
// navigations from other sites (a search result) keep compression, and
// so does every request from the site itself or with no Referer. The
// decision rests on Fetch Metadata, or, from clients that send none, on
// the Referer's host. It is not listed in Vary: every client accepts
// either representation, and varying on these headers would defeat
// browser caches (a reload differs in Sec-Fetch-Site from a link).
func crossSite(r *http.Request) bool {
	if site := r.Header["Sec-Fetch-Site"]; len(site) > 0 {
		if site[0] != "cross-site" {
			return false
		}
		return !(r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document")
	}
	ref := r.Header["Referer"]
	if len(ref) == 0 {
		return false
	}
	u, err := url.Parse(ref[0])
	if err != nil || u.Host == "" {
		return false
	}
	return vhost.Normalize(u.Host) != vhost.Normalize(r.Host)
}
