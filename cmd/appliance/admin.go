package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"
)

// serveAdmin starts the admin listener: /healthz answers 200 while a real
// request over the main listener gets an answer, /metrics the Prometheus
// text. It returns a function that stops it.
func (s *server) serveAdmin() (func(), error) {
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return nil, err
	}
	reg := s.metrics
	gauge := func(name, help string, v func() float64) { reg.Gauge(name, help, "gauge", v) }
	counter := func(name, help string, v func() float64) { reg.Gauge(name, help, "counter", v) }
	gauge("appliance_connections_open", "Client connections open.", func() float64 { return float64(s.fast.Open()) })
	counter("appliance_connections_rejected_total", "Connections closed at once by max_connections limits.", func() float64 { return float64(s.fast.Rejected()) })
	gauge("appliance_cache_entries", "Entries in the file cache.", func() float64 { n, _ := s.cache.Stats(); return float64(n) })
	gauge("appliance_cache_bytes", "Bytes the file cache accounts for.", func() float64 { _, b := s.cache.Stats(); return float64(b) })
	counter("appliance_cache_hits_total", "Requests answered from a fresh cache entry.", func() float64 { h, _ := s.cache.Counters(); return float64(h) })
	counter("appliance_cache_rebuilds_total", "Cache entries built or rebuilt from the file system.", func() float64 { _, r := s.cache.Counters(); return float64(r) })
	if s.access != nil {
		counter("appliance_access_log_dropped_total", "Access log lines dropped while the writer was behind.", func() float64 { return float64(s.access.Dropped()) })
	}
	gauge("appliance_goroutines", "Goroutines.", func() float64 { return float64(runtime.NumGoroutine()) })
	gauge("appliance_heap_bytes", "Heap bytes in use.", func() float64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapInuse)
	})

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if a := s.addr(); a == nil {
			// HTTPS only: no plain listener to probe.
		} else if err := probe(a, 2*time.Second); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	s.log.Info("admin listener", "addr", "http://"+ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
