package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"appliance/vhost"
)

// letsEncrypt is the default ACME directory, Let's Encrypt's.
const letsEncrypt = autocert.DefaultACMEDirectory

// ACMEOptions configures an ACME account.
type ACMEOptions struct {
	Dir          string         // cache (0700, files 0600): account key and certificates
	DirectoryURL string         // the CA's directory; default Let's Encrypt's
	Email        string         // contact for the account; optional
	Roots        *x509.CertPool // trusted for the CA's API; nil: the system's
	EAB          *acme.ExternalAccountBinding
	Log          *slog.Logger
	OnReady      func(name string) // a name got its first certificate; called on a goroutine of its own
	// RetryMin and RetryMax bound the wait after a failed attempt to get
	// a name's first certificate; it doubles per failure (1 min to 1 h
	// by default, which keeps well inside the CA's rate limits).
	RetryMin, RetryMax time.Duration
}

// ACME obtains and renews certificates from an ACME CA with autocert:
// TLS-ALPN-01 on the HTTPS listener, HTTP-01 on the plain one when
// HTTPHandler is used. Only the exact names given to SetHosts get
// certificates. A name whose certificate cannot be obtained is retried
// in the background with backoff; handshakes for it fail fast meanwhile,
// and the other names are not affected. Renewal, 1/3 of the lifetime
// before expiry, is autocert's; a failed renewal keeps the old
// certificate and retries.
type ACME struct {
	m       *autocert.Manager
	log     *slog.Logger
	onReady func(string)

	hosts              atomic.Pointer[map[string]bool]
	retryMin, retryMax time.Duration
	kick               chan struct{}
	closed             context.Context // done once Close is called
	close              context.CancelFunc
	stopped            chan struct{} // closed when the loop has returned, or by Close if it never ran
	startOnce          sync.Once

	mu    sync.Mutex
	names map[string]*nameState

	errs     atomic.Int64 // failed attempts
	obtained atomic.Int64 // certificates written to the cache (new or renewed)
}

type nameState struct {
	leaf     *x509.Certificate // last certificate served; nil before the first
	failures int
	next     time.Time // no new attempt before this, after a failure
	lastErr  error
}

// NewACME sets up the account's cache in opt.Dir. Nothing is requested
// from the CA until Start or a handshake.
func NewACME(opt ACMEOptions) (*ACME, error) {
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(opt.Dir, 0o700); err != nil {
		return nil, err
	}
	if opt.DirectoryURL == "" {
		opt.DirectoryURL = letsEncrypt
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.RetryMin <= 0 {
		opt.RetryMin = time.Minute
	}
	if opt.RetryMax < opt.RetryMin {
		opt.RetryMax = max(time.Hour, opt.RetryMin)
	}
	a := &ACME{
		log:      opt.Log,
		onReady:  opt.OnReady,
		retryMin: opt.RetryMin,
		retryMax: opt.RetryMax,
		kick:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		names:    map[string]*nameState{},
	}
	a.closed, a.close = context.WithCancel(context.Background())
	a.hosts.Store(&map[string]bool{})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opt.Roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: opt.Roots, MinVersion: tls.VersionTLS12}
	}
	a.m = &autocert.Manager{
		Prompt:                 autocert.AcceptTOS,
		Cache:                  &acmeCache{dir: autocert.DirCache(opt.Dir), a: a},
		HostPolicy:             a.allowed,
		Email:                  opt.Email,
		ExternalAccountBinding: opt.EAB,
		Client: &acme.Client{
			DirectoryURL: opt.DirectoryURL,
			HTTPClient:   &http.Client{Transport: closingTransport{tr, a.closed}, Timeout: time.Minute},
			UserAgent:    "appliance",
		},
	}
	return a, nil
}

// SetHosts replaces the names certificates are obtained for and wakes
// the background loop for the new ones.
func (a *ACME) SetHosts(names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[vhost.Normalize(n)] = true
	}
	a.hosts.Store(&set)
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// allowed is the host policy: exact configured names only. host may
// carry a port (an HTTP-01 request's Host).
func (a *ACME) allowed(_ context.Context, host string) error {
	if !(*a.hosts.Load())[vhost.Normalize(host)] {
		return fmt.Errorf("acme: %q is not a configured host", host)
	}
	return nil
}

// HTTPHandler answers HTTP-01 challenges (paths under
// /.well-known/acme-challenge/) and every other request with fallback,
// as autocert.Manager.HTTPHandler does, and enables that challenge type,
// tried after TLS-ALPN-01. A nil fallback redirects to HTTPS.
func (a *ACME) HTTPHandler(fallback http.Handler) http.Handler {
	return a.m.HTTPHandler(fallback)
}

// GetCertificate implements Source.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
		return a.m.GetCertificate(hello) // the CA validating a TLS-ALPN-01 challenge
	}
	name := vhost.Normalize(hello.ServerName)
	if err := a.allowed(context.Background(), name); err != nil {
		return nil, ErrNoCertificate
	}
	a.mu.Lock()
	st := a.state(name)
	if st.leaf == nil && time.Now().Before(st.next) {
		err := fmt.Errorf("acme: no certificate for %s yet (last attempt: %v); next attempt in %s", name, st.lastErr, time.Until(st.next).Round(time.Second))
		a.mu.Unlock()
		return nil, err
	}
	a.mu.Unlock()
	cert, err := a.m.GetCertificate(hello)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.failed(name, st, err)
		return nil, err
	}
	if st.leaf != cert.Leaf {
		if st.leaf == nil {
			a.log.Info("certificate ready", "name", name, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "issuer", cert.Leaf.Issuer.CommonName)
			if a.onReady != nil {
				go a.onReady(name)
			}
		}
		st.leaf, st.failures, st.next, st.lastErr = cert.Leaf, 0, time.Time{}, nil
	}
	return cert, nil
}

func (a *ACME) state(name string) *nameState {
	st := a.names[name]
	if st == nil {
		st = &nameState{}
		a.names[name] = st
	}
	return st
}

// failed records a failed attempt for name and schedules the next one.
// Handshakes that waited on the same attempt fail with it and count once.
func (a *ACME) failed(name string, st *nameState, err error) {
	if time.Now().Before(st.next) || a.closed.Err() != nil {
		return // or cut short by Close: no failure of the CA's
	}
	a.errs.Add(1)
	st.failures++
	wait := a.retryMax
	if st.failures < 20 {
		wait = min(a.retryMin<<(st.failures-1), a.retryMax)
	}
	st.next, st.lastErr = time.Now().Add(wait), err
	if st.leaf == nil {
		a.log.Error("no certificate for a site: its HTTPS handshakes fail until one is obtained", "name", name, "err", err, "attempt", st.failures, "retry_in", wait)
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Start obtains, in the background, the certificates of every name that
// has none yet, so that the first visitor does not wait for the CA. Call
// it once the listeners serve: the CA's challenges come to them. Later
// calls do nothing.
func (a *ACME) Start() {
	a.startOnce.Do(func() {
		go func() {
			defer close(a.stopped)
			a.loop()
		}()
	})
}

// Close stops the background loop and returns once it has stopped,
// cutting short the requests to the CA under way (a CA that hangs
// would hold it for minutes); Start does nothing after it. Handshakes
// still served get cached certificates only.
func (a *ACME) Close() {
	a.close()
	a.startOnce.Do(func() { close(a.stopped) }) // never started: nothing to wait for
	<-a.stopped
}

func (a *ACME) loop() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-a.closed.Done():
			return
		case <-timer.C:
		case <-a.kick:
		}
		for _, name := range a.due() {
			a.GetCertificate(ecdsaHello(name)) // logs and schedules a retry itself
			if a.closed.Err() != nil {
				return
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(a.untilNext())
	}
}

// due lists the configured names without a certificate whose retry time
// has come.
func (a *ACME) due() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var due []string
	now := time.Now()
	for name := range *a.hosts.Load() {
		if st := a.names[name]; st == nil || (st.leaf == nil && !now.Before(st.next)) {
			due = append(due, name)
		}
	}
	slices.Sort(due)
	return due
}

// untilNext is how long until the earliest scheduled retry (an hour when
// none is scheduled).
func (a *ACME) untilNext() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	wait := time.Hour
	hosts := *a.hosts.Load()
	for name, st := range a.names {
		if hosts[name] && st.leaf == nil && !st.next.IsZero() {
			wait = min(wait, max(time.Until(st.next), 0))
		}
	}
	return wait
}

// CertInfo describes a configured name's certificate.
type CertInfo struct {
	Name     string
	NotAfter time.Time // zero: none yet
	Err      error     // the last failure, if the name has no certificate
}

// Certificates lists the configured names, sorted, with the expiry of
// the certificates they serve now (after a renewal, the new one's).
func (a *ACME) Certificates() []CertInfo {
	// Ask autocert for the names that have a certificate: it answers
	// from memory, renewed or not, without contacting the CA.
	a.mu.Lock()
	var have []string
	for name := range *a.hosts.Load() {
		if st := a.names[name]; st != nil && st.leaf != nil {
			have = append(have, name)
		}
	}
	a.mu.Unlock()
	for _, name := range have {
		a.GetCertificate(ecdsaHello(name))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []CertInfo
	for name := range *a.hosts.Load() {
		ci := CertInfo{Name: name}
		if st := a.names[name]; st != nil {
			if st.leaf != nil {
				ci.NotAfter = st.leaf.NotAfter
			}
			ci.Err = st.lastErr
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(x, y CertInfo) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// ecdsaHello is a ClientHello for name from a client that supports
// ECDSA certificates.
func ecdsaHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       name,
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
	}
}

// Errors counts failed attempts to obtain a certificate.
func (a *ACME) Errors() int64 { return a.errs.Load() }

// Obtained counts certificates written to the cache, first ones and
// renewals.
func (a *ACME) Obtained() int64 { return a.obtained.Load() }

// acmeCache is autocert's directory cache that treats an unreadable or
// corrupt entry as missing (logged, then obtained again) rather than
// failing every handshake.
type acmeCache struct {
	dir autocert.DirCache
	a   *ACME
}

func (c *acmeCache) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := c.dir.Get(ctx, key)
	if errors.Is(err, autocert.ErrCacheMiss) {
		return nil, err
	}
	if err != nil {
		c.a.log.Error("ACME cache entry unreadable; getting a new one", "entry", key, "err", err)
		return nil, autocert.ErrCacheMiss
	}
	if err := checkEntry(entryKind(key), data); err != nil {
		c.a.log.Error("ACME cache entry corrupt; getting a new one", "entry", key, "err", err)
		return nil, autocert.ErrCacheMiss
	}
	return data, nil
}

// Kinds of cache entries, by autocert's key names.
const (
	entryCert    = iota // "example.com", "example.com+rsa"
	entryAccount        // "acme_account+key"
	entryToken          // "example.com+token": TLS-ALPN-01 challenge certificate
	entryHTTP           // "TOKEN+http-01": HTTP-01 challenge response
)

func entryKind(key string) int {
	switch {
	case strings.HasPrefix(key, "acme_account"):
		return entryAccount
	case strings.HasSuffix(key, "+token"):
		return entryToken
	case strings.HasSuffix(key, "+http-01"):
		return entryHTTP
	}
	return entryCert
}

// checkEntry checks that a key or certificate entry has a private key
// and, for a certificate, a parsable chain.
func checkEntry(kind int, data []byte) error {
	if kind == entryHTTP {
		return nil
	}
	var hasKey, hasCert bool
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch {
		case strings.Contains(b.Type, "PRIVATE KEY"):
			hasKey = true
		case b.Type == "CERTIFICATE":
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return err
			}
			hasCert = true
		}
	}
	if !hasKey {
		return errors.New("no private key")
	}
	if !hasCert && kind != entryAccount {
		return errors.New("no certificate")
	}
	return nil
}

func (c *acmeCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.dir.Put(ctx, key, data)
	if err != nil {
		c.a.log.Error("writing the ACME cache", "entry", key, "err", err)
	} else if entryKind(key) == entryCert {
		c.a.obtained.Add(1)
		c.a.log.Info("certificate stored", "entry", key)
	}
	return err
}

func (c *acmeCache) Delete(ctx context.Context, key string) error { return c.dir.Delete(ctx, key) }

// closingTransport cancels a request to the CA, and the reading of its
// response, once closed is done.
type closingTransport struct {
	base   http.RoundTripper
	closed context.Context
}

func (t closingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(t.closed, cancel)
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

// releasingBody calls release once the body is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
