package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"appliance/certs"
	"appliance/compress"
	"appliance/internal/httpx"
	"appliance/metrics"
	"appliance/piupdate"
	"appliance/rewrite"
)

// serveAdmin starts the admin listener: /healthz answers 200 while a real
// request over the main listener gets an answer, /metrics the Prometheus
// text, /log the last recentLogBytes of the server's own log (not the
// access log). It returns a function that stops it. What it serves
// (client addresses in the log, profiles) is for a private network only.
func (s *server) serveAdmin() (func(), error) {
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return nil, err
	}
	reg := s.metrics
	reg.Gauge("appliance_connections_open", "Client connections open.", func() float64 { return float64(s.plainAccept.Open()) })
	reg.Counter("appliance_connections_rejected_total", "Connections closed at once by max_connections limits.", func() float64 { return float64(s.plainAccept.Rejected()) })
	reg.Gauge("appliance_cache_entries", "Entries in the file cache.", func() float64 { n, _ := s.cache.Stats(); return float64(n) })
	reg.Gauge("appliance_cache_bytes", "Bytes the file cache accounts for.", func() float64 { _, b := s.cache.Stats(); return float64(b) })
	reg.Counter("appliance_cache_hits_total", "Requests answered from a fresh cache entry.", func() float64 { h, _ := s.cache.Counters(); return float64(h) })
	reg.Counter("appliance_cache_rebuilds_total", "Cache entries built or rebuilt from the file system.", func() float64 { _, r := s.cache.Counters(); return float64(r) })
	reg.Gauge("appliance_compress_stream_bytes", "Memory reserved by live per-request compression encoders, of a 40 MiB budget.", func() float64 { _, held, _ := compress.StreamStats(); return float64(held) })
	reg.Counter("appliance_compress_stream_refused_total", "Per-request encoders refused for want of room in the budget: a cheaper coding or identity went out instead.", func() float64 { _, _, n := compress.StreamStats(); return float64(n) })
	if s.access != nil {
		reg.Counter("appliance_access_log_dropped_total", "Access log lines dropped while the writer was behind.", func() float64 { return float64(s.access.Dropped()) })
	}
	reg.Gauge("appliance_rate_limit_clients", "Client addresses the rate limits remember, all rules together; each rule keeps at most server.rate_limit_clients.", func() float64 {
		n := 0
		for _, l := range s.sites.Load().limits {
			n += l.Clients()
		}
		return float64(n)
	})
	reg.LabelledGauge("appliance_certificate_expiry_timestamp_seconds", "When each HTTPS name's certificate expires, in Unix seconds; 0 while an ACME name has none.", s.certSamples)
	if s.acme != nil {
		account := func(f func(*certs.ACME) int64) func() float64 {
			return func() float64 {
				if a := s.sites.Load().account; a != nil {
					return float64(f(a))
				}
				return 0
			}
		}
		reg.Counter("appliance_acme_errors_total", "Failed attempts to obtain a certificate from the ACME CA.", account((*certs.ACME).Errors))
		reg.Counter("appliance_acme_certificates_stored_total", "Certificates obtained from the ACME CA, first ones and renewals.", account((*certs.ACME).Obtained))
	}
	reg.Gauge("appliance_goroutines", "Goroutines.", func() float64 { return float64(runtime.NumGoroutine()) })
	reg.Gauge("appliance_heap_bytes", "Heap bytes in use.", func() float64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapInuse)
	})

	guard := func(h http.Handler) http.Handler { return h }
	if s.cfg.Admin.Token != "" {
		secret, err := rewrite.NewSecret(s.cfg.Admin.Token)
		if err != nil {
			ln.Close()
			return nil, err
		}
		guard = func(h http.Handler) http.Handler { return bearer(secret, h) }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", guard(reg))
	if s.cfg.Admin.PProf {
		mux.Handle("GET /debug/pprof/{name}", guard(http.HandlerFunc(servePProf)))
	}
	mux.Handle("GET /log", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(s.recent.Bytes())
	})))
	// An update replaces the system: never without a token, whatever
	// the listener.
	var update http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "updates need admin.token (appliance hash-password)", http.StatusForbidden)
	})
	if s.cfg.Admin.Token != "" {
		update = guard(&piupdate.Handler{Board: piupdate.Gokrazy(), Version: versionString(), Log: s.log})
	}
	mux.Handle("/update", update)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if a, secure := s.probeTarget(); a == nil {
			// No listener yet.
		} else if err := probe(a, secure, 2*time.Second); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 70 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	s.log.Info("admin listener", "addr", "http://"+ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// bearer admits the requests that carry "Authorization: Bearer TOKEN"
// with the token secret hashes, as deploys do; others get 401, or 429
// (an address locked out after failing) or 503 (hashing busy) with
// Retry-After.
func bearer(secret *rewrite.Secret, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := secret.CheckBearer(r)
		var refused *rewrite.Refused
		if errors.As(err, &refused) {
			w.Header().Set("Retry-After", httpx.RetryAfter(refused.RetryAfter()))
			http.Error(w, err.Error(), refused.Status())
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="appliance admin"`)
			http.Error(w, "a valid admin token is needed", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// certSamples lists the expiry of every certificate the sites use, by
// name: ACME names and manual certificates (the local CA renews its
// own well before expiry).
func (s *server) certSamples() []metrics.Sample {
	set := s.sites.Load()
	var out []metrics.Sample
	if set.account != nil {
		for _, c := range set.account.Certificates() {
			v := 0.0
			if !c.NotAfter.IsZero() {
				v = float64(c.NotAfter.Unix())
			}
			out = append(out, metrics.Sample{Labels: []string{"name", c.Name, "source", "acme"}, Value: v})
		}
	}
	for name, m := range set.manual {
		out = append(out, metrics.Sample{Labels: []string{"name", name, "source", "manual"}, Value: float64(m.Leaf().NotAfter.Unix())})
	}
	slices.SortFunc(out, func(a, b metrics.Sample) int { return strings.Compare(a.Labels[1], b.Labels[1]) })
	return out
}

// servePProf writes a profile in pprof's format: "profile" is the CPU
// for ?seconds= (default 30, at most 60), any other name a runtime
// profile (allocs, heap, goroutine, block, mutex, threadcreate).
// Written with runtime/pprof alone: net/http/pprof would link
// html/template into the binary.
func servePProf(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	name := r.PathValue("name")
	if name != "profile" {
		p := pprof.Lookup(name)
		if p == nil {
			http.NotFound(w, r)
			return
		}
		p.WriteTo(w, 0)
		return
	}
	sec, err := strconv.Atoi(r.FormValue("seconds"))
	if err != nil || sec <= 0 || sec > 60 {
		sec = 30
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		http.Error(w, err.Error(), http.StatusConflict) // one at a time
		return
	}
	t := time.NewTimer(time.Duration(sec) * time.Second)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
	}
	pprof.StopCPUProfile()
}
