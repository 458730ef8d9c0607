package deploy

import (
	"appliance/internal/httpx"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Prefix is where a deployable site answers the deploy protocol, on its
// own listeners: the URL that names the site names its deploys.
const Prefix = "/.well-known/appliance/deploy/"

// Handler serves the deploy protocol of one site, under Prefix:
//
//	POST manifest      a Manifest; answers {"missing": [sha256...]}, and
//	                   {"offsets": {sha256: bytes}} for the missing blobs
//	                   of which a cut-off upload left bytes
//	HEAD blobs/SHA256  Upload-Offset: the bytes the server holds of it
//	PUT  blobs/SHA256  the content of a missing blob; with Upload-Offset,
//	                   the rest of it from there (409 and the offset the
//	                   server holds, if another)
//	POST releases      the Manifest again: assemble and activate it (201),
//	                   or 200 when it is the active release's already
//	GET  releases      {"releases": [Release...]}, newest first
//	POST rollback      activate the release before the active one
//
// Every request carries "Authorization: Bearer TOKEN" or comes over a
// TLS connection with a client certificate of ClientCAs, checked before
// any body is read; without TLS only loopback clients are answered.
type Handler struct {
	Store *Store
	// Authorized checks the bearer token r carries
	// (rewrite.Secret.CheckBearer): nil if it passed; an error with Status and RetryAfter methods (a
	// client locked out after failing, hashing busy) is answered with
	// that status, any other with 401. nil: no token is accepted.
	Authorized func(r *http.Request) error
	// ClientCAs, when set, admit a request without a token whose TLS
	// handshake named a server (SNI) and proved a client certificate
	// that chains to them, for client authentication. The transport
	// must make sure the handshake's server name is this site's (the
	// server answers 421 otherwise).
	ClientCAs *x509.CertPool
	// Activated, when set, is told that another release is active, so
	// that the server shows it at once rather than at its next check.
	Activated func()
	// Log, when set, is told of each release activated (a deploy or a
	// rollback), with the client's address.
	Log *slog.Logger
	// ReadTimeout: an upload must make progress of 1 MiB per ReadTimeout
	// (the server's read_timeout would otherwise end any upload that
	// takes longer as a whole).
	ReadTimeout time.Duration
	// WriteTimeout: the server's write_timeout, which counts from the
	// request's start (HTTP/1.1) or the stream's (HTTP/2), so that it
	// would end (HTTP/2: reset) any upload taking longer as a whole; an
	// upload's response gets it after each MiB's ReadTimeout instead.
	WriteTimeout time.Duration
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.checkTransport(w, r) || !h.checkAuth(w, r) {
		return
	}
	name, arg := operation(strings.TrimPrefix(r.URL.Path, Prefix))
	methods, ok := operations[name]
	if !ok {
		writeError(w, http.StatusNotFound, "no such deploy operation")
		return
	}
	serve := methods[r.Method]
	if serve == nil {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	serve(h, w, r, arg)
}

// An opHandler serves one method of a deploy operation; arg is what
// follows the operation's name (a blob's SHA256).
type opHandler func(h *Handler, w http.ResponseWriter, r *http.Request, arg string)

// operations holds the handlers of the deploy operations by name, then
// by method.
var operations = map[string]map[string]opHandler{
	"manifest": {http.MethodPost: (*Handler).postManifest},
	"blobs/":   {http.MethodPut: (*Handler).putBlob, http.MethodHead: (*Handler).headBlob},
	"releases": {
		http.MethodPost: (*Handler).postRelease,
		http.MethodGet:  (*Handler).getReleases,
		http.MethodHead: (*Handler).getReleases,
	},
	"rollback": {http.MethodPost: (*Handler).postRollback},
}

// operation splits op, the path below Prefix, into the operation's name
// and its argument: "blobs/SHA256" is "blobs/" and SHA256.
func operation(op string) (name, arg string) {
	if arg, ok := strings.CutPrefix(op, "blobs/"); ok {
		return "blobs/", arg
	}
	return op, ""
}

// checkTransport answers 403 to a request over plain HTTP from another
// client than loopback, or through a proxy: a trusted proxy's
// X-Forwarded-For or Forwarded may make a remote client's address
// 127.0.0.1 (the server's trusted_proxies decide RemoteAddr), and its
// token would have crossed the network in the clear.
func (h *Handler) checkTransport(w http.ResponseWriter, r *http.Request) bool {
	if r.TLS == nil && (!loopback(r.RemoteAddr) || r.Header["X-Forwarded-For"] != nil || r.Header["Forwarded"] != nil) {
		writeError(w, http.StatusForbidden, "deploys need HTTPS (plain HTTP only from loopback, not through a proxy)")
		return false
	}
	return true
}

var errNoToken = errors.New("no bearer token")

// checkAuth admits a request with a deployer's certificate (certified);
// else it answers 401 to a request without a valid bearer token, or the
// status Authorized refused it with (429, 503) and Retry-After.
func (h *Handler) checkAuth(w http.ResponseWriter, r *http.Request) bool {
	if h.certified(r.TLS) {
		return true
	}
	err := errNoToken
	if h.Authorized != nil {
		err = h.Authorized(r)
	}
	var refused interface {
		Status() int
		RetryAfter() time.Duration
	}
	if errors.As(err, &refused) {
		w.Header().Set("Retry-After", httpx.RetryAfter(refused.RetryAfter()))
		writeError(w, refused.Status(), err.Error())
		return false
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="appliance deploy"`)
		writeError(w, http.StatusUnauthorized, h.credentials())
		return false
	}
	return true
}

// credentials says what the site accepts, for a 401.
func (h *Handler) credentials() string {
	switch {
	case h.ClientCAs == nil:
		return "a valid deploy token is needed (APPLIANCE_DEPLOY_TOKEN)"
	case h.Authorized == nil:
		return "a client certificate for client authentication (extendedKeyUsage clientAuth), issued by the site's deploy_client_ca, is needed (-cert, -key), over HTTPS to the site's name"
	}
	return "a valid deploy token (APPLIANCE_DEPLOY_TOKEN) or a client certificate for client authentication (extendedKeyUsage clientAuth), issued by the site's deploy_client_ca (-cert, -key), is needed"
}

// certified reports whether st is a TLS connection whose handshake named
// a server (SNI: without one, the site is chosen by address and asks for
// no certificate) and proved a certificate that chains to ClientCAs.
// The chain is verified here, whatever the handshake verified: a site
// with client_ca verifies against that, and a resumed session carries
// the certificates of the handshake it was resumed from (none, if that
// had none). The certificate must be issued by a certificate of
// ClientCAs itself (an intermediate CA goes in the bundle): the
// intermediates a client sends are not used, since any client, without
// a token or a certificate, could send a hundred of them, one candidate
// issuer each, and make every request check as many signatures (99 of
// P-521 cost the server 0.36 s of CPU per 69-byte request).
func (h *Handler) certified(st *tls.ConnectionState) bool {
	if h.ClientCAs == nil || st == nil || st.ServerName == "" || len(st.PeerCertificates) == 0 {
		return false
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: h.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err == nil
}

// postManifest answers the blobs of a Manifest that the store lacks.
func (h *Handler) postManifest(w http.ResponseWriter, r *http.Request, _ string) {
	m, err := ParseManifest(r.Body, h.Store.lim)
	if err != nil {
		writeErr(w, err)
		return
	}
	missing := nonNil(h.Store.Missing(m))
	ans := map[string]any{"missing": missing}
	if offsets := h.Store.Offsets(missing); len(offsets) > 0 {
		ans["offsets"] = offsets
	}
	httpx.WriteJSON(w, http.StatusOK, ans)
}

// headBlob answers the bytes the store holds of the blob sum.
func (h *Handler) headBlob(w http.ResponseWriter, _ *http.Request, sum string) {
	if !ValidSum(sum) {
		writeError(w, http.StatusBadRequest, "not a blob name")
		return
	}
	w.Header().Set(offsetField, strconv.FormatInt(h.Store.Offset(sum), 10))
	w.WriteHeader(http.StatusNoContent)
}

// offsetField tells where an upload resumes, and the bytes the server
// holds (draft-ietf-httpbis-resumable-upload's Upload-Offset).
const offsetField = "Upload-Offset"

// putBlob stores the blob sum, or its rest from Upload-Offset, extending
// the read deadline as it comes.
func (h *Handler) putBlob(w http.ResponseWriter, r *http.Request, sum string) {
	offset, err := parseOffset(r.Header.Values(offsetField))
	if err != nil {
		writeErr(w, err)
		return
	}
	h.extendReads(w)
	body := &progressReader{r: r.Body, step: func() { h.extendReads(w) }}
	if err := h.Store.Put(sum, offset, r.ContentLength, body); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postRelease assembles the Manifest into a release and activates it.
func (h *Handler) postRelease(w http.ResponseWriter, r *http.Request, _ string) {
	m, err := ParseManifest(r.Body, h.Store.lim)
	if err != nil {
		writeErr(w, err)
		return
	}
	rel, err := h.Store.Commit(m)
	if errors.Is(err, ErrUnchanged) {
		httpx.WriteJSON(w, http.StatusOK, rel) // nothing new: 200, not 201
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	h.activated(r, "deploy", rel)
	httpx.WriteJSON(w, http.StatusCreated, rel)
}

// getReleases lists the releases, newest first.
func (h *Handler) getReleases(w http.ResponseWriter, _ *http.Request, _ string) {
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"releases": nonNil(h.Store.Releases())})
}

// postRollback activates the release before the active one.
func (h *Handler) postRollback(w http.ResponseWriter, r *http.Request, _ string) {
	rel, err := h.Store.Rollback()
	if err != nil {
		writeErr(w, err)
		return
	}
	h.activated(r, "rollback", rel)
	httpx.WriteJSON(w, http.StatusOK, rel)
}

// activated tells Activated and the log that rel is active, by how
// (deploy, rollback).
func (h *Handler) activated(r *http.Request, how string, rel Release) {
	if h.Activated != nil {
		h.Activated()
	}
	if h.Log != nil {
		by := "token"
		if h.certified(r.TLS) {
			by = "certificate " + r.TLS.PeerCertificates[0].Subject.String()
		}
		h.Log.Info(how+": release active", "release", rel.ID, "files", rel.Files, "bytes", rel.Bytes, "client", r.RemoteAddr, "by", by)
	}
}

// extendReads gives the upload ReadTimeout more to read its next MiB,
// and its response WriteTimeout after that. (A transport without read
// deadlines, the appliance's HTTP/2, still ends an upload that makes
// no progress: at the write deadline.)
func (h *Handler) extendReads(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	if h.ReadTimeout > 0 {
		rc.SetReadDeadline(time.Now().Add(h.ReadTimeout))
	}
	if h.WriteTimeout > 0 {
		rc.SetWriteDeadline(time.Now().Add(h.ReadTimeout + h.WriteTimeout))
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

// parseOffset reads the Upload-Offset field's values: absent, 0; else
// one value, 1 to 18 decimal digits (an offset under 10^18 bytes; any
// offset past the per-file limit is refused by the store).
func parseOffset(values []string) (int64, error) {
	switch len(values) {
	case 0:
		return 0, nil
	case 1:
	default:
		return 0, fmt.Errorf("%w %s: given %d times", ErrInvalid, offsetField, len(values))
	}
	v := values[0]
	if v == "" || len(v) > 18 {
		return 0, fmt.Errorf("%w %s %q: want 1 to 18 digits", ErrInvalid, offsetField, v)
	}
	var n int64
	for i := range len(v) {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w %s %q: want 1 to 18 digits", ErrInvalid, offsetField, v)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
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
	var (
		miss *MissingError
		oe   *OffsetError
	)
	switch {
	case errors.As(err, &oe):
		w.Header().Set(offsetField, strconv.FormatInt(oe.Have, 10))
		httpx.WriteJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "offset": oe.Have})
	case errors.As(err, &miss):
		httpx.WriteJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "missing": miss.Missing})
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
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	httpx.WriteJSON(w, status, map[string]string{"error": msg})
}
