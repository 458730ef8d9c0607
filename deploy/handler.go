package deploy

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Prefix is where a deployable site answers the deploy protocol, on its
// own listeners: the URL that names the site names its deploys.
const Prefix = "/.well-known/appliance/deploy/"

// Handler serves the deploy protocol of one site, under Prefix:
//
//	POST manifest      a Manifest; answers {"missing": [sha256...]}
//	PUT  blobs/SHA256  the content of a missing blob
//	POST releases      the Manifest again: assemble and activate it (201)
//	GET  releases      {"releases": [Release...]}, newest first
//	POST rollback      activate the release before the active one
//
// Every request carries "Authorization: Bearer TOKEN", checked before
// any body is read; without TLS only loopback clients are answered.
type Handler struct {
	Store *Store
	// Authorized checks a bearer token (rewrite.Secret.Check).
	Authorized func(token string) bool
	// Activated, when set, is told that another release is active, so
	// that the server shows it at once rather than at its next check.
	Activated func()
	// ReadTimeout: an upload must make progress of 1 MiB per ReadTimeout
	// (the server's read_timeout would otherwise end any upload that
	// takes longer as a whole).
	ReadTimeout time.Duration
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.TLS == nil && !loopback(r.RemoteAddr) {
		writeError(w, http.StatusForbidden, "deploys need HTTPS (plain HTTP only from loopback)")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" || !h.Authorized(token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="appliance deploy"`)
		writeError(w, http.StatusUnauthorized, "a valid deploy token is needed (APPLIANCE_DEPLOY_TOKEN)")
		return
	}
	op := strings.TrimPrefix(r.URL.Path, Prefix)
	switch {
	case op == "manifest" && r.Method == http.MethodPost:
		m, err := ParseManifest(r.Body, h.Store.lim)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"missing": nonNil(h.Store.Missing(m))})
	case strings.HasPrefix(op, "blobs/") && r.Method == http.MethodPut:
		h.extendReads(w)
		body := &progressReader{r: r.Body, step: func() { h.extendReads(w) }}
		if err := h.Store.Put(strings.TrimPrefix(op, "blobs/"), r.ContentLength, body); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case op == "releases" && r.Method == http.MethodPost:
		m, err := ParseManifest(r.Body, h.Store.lim)
		if err != nil {
			writeErr(w, err)
			return
		}
		rel, err := h.Store.Commit(m)
		if err != nil {
			writeErr(w, err)
			return
		}
		h.activated()
		writeJSON(w, http.StatusCreated, rel)
	case op == "releases" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		writeJSON(w, http.StatusOK, map[string]any{"releases": nonNil(h.Store.Releases())})
	case op == "rollback" && r.Method == http.MethodPost:
		rel, err := h.Store.Rollback()
		if err != nil {
			writeErr(w, err)
			return
		}
		h.activated()
		writeJSON(w, http.StatusOK, rel)
	case op == "manifest" || op == "releases" || op == "rollback" || strings.HasPrefix(op, "blobs/"):
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	default:
		writeError(w, http.StatusNotFound, "no such deploy operation")
	}
}

func (h *Handler) activated() {
	if h.Activated != nil {
		h.Activated()
	}
}

// extendReads gives the upload ReadTimeout more to read its next MiB.
func (h *Handler) extendReads(w http.ResponseWriter) {
	if h.ReadTimeout > 0 {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.ReadTimeout))
	}
}

// progressReader calls step after every MiB read.
type progressReader struct {
	r    io.Reader
	n    int
	step func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.n += n; p.n >= 1<<20 {
		p.n = 0
		p.step()
	}
	return n, err
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// writeErr maps the store's errors to statuses.
func writeErr(w http.ResponseWriter, err error) {
	var miss *MissingError
	switch {
	case errors.As(err, &miss):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "missing": miss.Missing})
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, ErrQuota):
		writeError(w, http.StatusInsufficientStorage, err.Error())
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrNoPrevious):
		writeError(w, http.StatusConflict, err.Error())
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
