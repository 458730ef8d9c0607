// Package pebbletest runs Let's Encrypt's test CA, Pebble, inside a test
// process: its ACME API on a loopback TLS server, its validation
// authority pointed at the test's own challenge ports, and a DNS server
// that resolves every name to 127.0.0.1. Nothing leaves the machine.
package pebbletest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Options say where the CA's validation connects and how long its
// certificates last.
type Options struct {
	HTTPPort int           // HTTP-01 challenges go to 127.0.0.1:HTTPPort
	TLSPort  int           // TLS-ALPN-01 challenges go to 127.0.0.1:TLSPort
	Validity time.Duration // of issued certificates; 0: Pebble's 90 days
	Log      bool          // copy Pebble's log to the test log
}

// CA is a running Pebble.
type CA struct {
	URL      string         // the ACME directory
	Roots    *x509.CertPool // trusts the ACME API's TLS certificate
	RootsPEM string         // a file with that certificate, for a config's ca_root
	Issuer   *x509.CertPool // Pebble's root: verifies the certificates it issues

	requests atomic.Int64
	srv      *httptest.Server
	dns      *dns.Server
}

// Start runs a Pebble until the test ends. It sets environment
// variables, so the calling test must not be parallel.
func Start(t testing.TB, opt Options) *CA {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no random badNonce errors
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order validates
	t.Setenv("PEBBLE_CHAIN_LENGTH", "2")    // root and one intermediate
	t.Setenv("PEBBLE_ALTERNATE_ROOTS", "0")
	var out io.Writer = io.Discard
	if opt.Log {
		out = testWriter{t}
	}
	logger := log.New(out, "pebble ", 0)

	// Every name resolves to loopback.
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds := &dns.Server{Listener: dl, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	ds.NotifyStartedFunc = func() { close(started) }
	go ds.ActivateAndServe()
	<-started

	validity := uint64(opt.Validity / time.Second)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 2, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: validity},
	})
	validator := va.New(logger, opt.HTTPPort, opt.TLSPort, false, dl.Addr().String(), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	c := &CA{dns: ds}
	h := front.Handler()
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	c.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.srv.StartTLS()
	c.URL = c.srv.URL + wfe.DirectoryPath
	c.Roots = x509.NewCertPool()
	c.Roots.AddCert(c.srv.Certificate())
	c.RootsPEM = filepath.Join(t.TempDir(), "pebble-api.pem")
	if err := os.WriteFile(c.RootsPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Issuer = x509.NewCertPool()
	c.Issuer.AddCert(authority.GetRootCert(0).Cert)
	t.Cleanup(c.Stop)
	return c
}

// ClosingPort returns a loopback port whose connections are closed at
// once, until the test ends: pointing Options.TLSPort or HTTPPort at it
// makes that challenge type fail, so that the CA validates by the other.
func ClosingPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// Requests counts requests to the ACME API so far.
func (c *CA) Requests() int64 { return c.requests.Load() }

// Stop takes the CA down: its API refuses connections from then on.
func (c *CA) Stop() {
	c.srv.CloseClientConnections()
	c.srv.Close()
	c.dns.Shutdown()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
