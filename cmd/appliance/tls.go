package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/acme"

	"appliance/certs"
	"appliance/config"
	"appliance/internal/httpx"
	"appliance/vhost"
)

// tlsSite reports whether a site is served over HTTPS.
func tlsSite(s *config.Site) bool { return s.TLS != "off" }

// openLocalCA opens the private CA in the state directory.
func openLocalCA(cfg *config.Config) (*certs.LocalCA, error) {
	ca, err := certs.OpenLocalCA(filepath.Join(cfg.Server.StateDir, "local-ca"))
	if err != nil {
		return nil, stateDirError(cfg, "local-ca", err)
	}
	return ca, nil
}

// stateDirError says why the directory sub of the state directory could
// not be used, naming server.state_dir and its place in the file.
func stateDirError(cfg *config.Config, sub string, err error) error {
	if e := cfg.StateDirUsable(sub); e != nil {
		return e
	}
	return fmt.Errorf("%s: server.state_dir %q: %w", cfg.Where("server.state_dir"), cfg.Server.StateDir, err)
}

// openACME sets up the ACME account, its cache in the state directory;
// roots are those of the CA's HTTPS (nil: the system's), and onReady is
// told when a name gets its first certificate.
func openACME(cfg *config.Config, roots *x509.CertPool, log *slog.Logger, onReady func(string)) (*certs.ACME, error) {
	var eab *acme.ExternalAccountBinding
	if cfg.ACME.EABKeyID != "" {
		eab = &acme.ExternalAccountBinding{KID: cfg.ACME.EABKeyID, Key: cfg.ACME.EABKey()}
	}
	if err := cfg.StateDirUsable("acme"); err != nil {
		return nil, err
	}
	return certs.NewACME(certs.ACMEOptions{
		Dir:          filepath.Join(cfg.Server.StateDir, "acme"),
		DirectoryURL: cfg.ACME.Directory,
		Email:        cfg.ACME.Email,
		Roots:        roots,
		EAB:          eab,
		Log:          log.With("component", "acme"),
		OnReady:      onReady,
	})
}

// toHTTPS redirects plain-HTTP requests of a TLS site to HTTPS (308 keeps
// the method of a non-GET request), on the port the world reaches HTTPS
// on: public (server.public_https_port) when set, which differs from the
// listener's behind port mapping (a container's -p 443:8443, a
// Kubernetes Service), else the HTTPS listener's own port. The redirect
// is permanent, so cacheable for cacheControl (the site's
// redirect_cache_control).
func toHTTPS(port *atomic.Value, public int, cacheControl string) http.Handler {
	fixed := ""
	permanent := httpx.Permanent(cacheControl)
	if public != 0 {
		fixed = strconv.Itoa(public)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := vhost.Normalize(r.Host)
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		p := fixed
		if p == "" {
			p, _ = port.Load().(string)
		}
		if p != "" && p != "443" {
			host += ":" + p
		}
		status := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status = http.StatusPermanentRedirect
		}
		hd := w.Header()
		hd.Set("Location", "https://"+host+r.URL.RequestURI())
		hd["Cache-Control"] = httpx.RedirectCacheControl(status, permanent)
		hd.Set("Content-Length", "0")
		w.WriteHeader(status)
	})
}

// challengeFiles serves the token files an outside ACME client put under
// acmeChallengePath with files, and nothing else there (no listing), and
// every other path with next: the shape of certs.ACME.HTTPHandler, for
// the TLS sites whose certificates another ACME client obtains.
func challengeFiles(files, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !strings.HasPrefix(r.URL.Path, acmeChallengePath):
			next.ServeHTTP(w, r)
		case strings.HasSuffix(r.URL.Path, "/"):
			vhost.Error(w, r, http.StatusNotFound)
		default:
			files.ServeHTTP(w, r)
		}
	})
}

// acmeChallengePath is where ACME CAs fetch HTTP-01 tokens.
const acmeChallengePath = "/.well-known/acme-challenge/"

// hsts adds Strict-Transport-Security to a site's HTTPS responses.
func hsts(value string, next http.Handler) http.Handler {
	if value == "off" {
		return next
	}
	v := []string{value}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Strict-Transport-Security"] = v
		next.ServeHTTP(w, r)
	})
}

// misdirected answers 421 when a request's Host belongs to another site
// than the one whose TLS policy (certificate, client_ca) its handshake
// used (RFC 9110 15.5.20). sel, the handshake's own selector, decides:
// by SNI or, without SNI, by the connection's local address, which every
// transport puts where net/http does (http.LocalAddrContextKey). A
// request without TLS state never reaches an HTTPS site.
func misdirected(sel *certs.Selector, notices *notices, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var local net.Addr
		if r.TLS != nil && r.TLS.ServerName == "" {
			local, _ = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		}
		if !sel.Answers(r.TLS, local, r.Host) {
			sni := ""
			if r.TLS != nil {
				sni = r.TLS.ServerName
			}
			notices.warn(noticeMisdirected, "host", clip(r.Host), "sni", sni, "remote", r.RemoteAddr)
			vhost.Error(w, r, http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noSite logs, rate-limited, a handshake refused because no site has
// its name (the client then sees "tlsv1 alert internal error"). The
// health probe's own handshakes are not logged.
func (s *server) noSite(hello *tls.ClientHelloInfo) {
	if hello.ServerName == healthHost {
		return
	}
	var remote, local net.Addr
	if hello.Conn != nil {
		remote, local = hello.Conn.RemoteAddr(), hello.Conn.LocalAddr()
	}
	if hello.ServerName == "" {
		s.notices.warn(noticeNoSNI, "remote", remote, "local", local)
		return
	}
	s.notices.warn(noticeUnknownSNI, "sni", clip(hello.ServerName), "remote", remote)
}

// tlsConfig returns the HTTPS listener's configuration, whose certificate
// selection follows reloads.
func (s *server) tlsConfig() *tls.Config {
	return certs.ServerConfig(func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := s.sites.Load().certs.GetCertificate(hello)
		if errors.Is(err, certs.ErrNoCertificate) {
			s.noSite(hello)
		}
		return c, err
	}, func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		return s.sites.Load().certs.ConfigForClient(hello)
	})
}
