package main

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMaintenanceGate: the README's default Retry-After (300), a
// configured one rounded up to whole seconds, the built-in page (no body
// on HEAD), /.well-known/ passed through, and nothing but the flag
// consulted per request.
func TestMaintenanceGate(t *testing.T) {
	var s server
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("content")) })
	for _, c := range []struct {
		retry time.Duration
		want  string
	}{{0, "300"}, {time.Minute, "60"}, {1500 * time.Millisecond, "2"}} {
		gate := s.maintenanceGate("", nil, c.retry, next)
		serve := func(method, target string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			gate.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
			return rec
		}
		s.maintenance.Store(false)
		if rec := serve("GET", "/"); rec.Code != 200 || rec.Body.String() != "content" {
			t.Fatalf("off: %d %q", rec.Code, rec.Body)
		}
		s.maintenance.Store(true)
		rec := serve("GET", "/page.html")
		if rec.Code != 503 || rec.Header().Get("Retry-After") != c.want || !strings.Contains(rec.Body.String(), "Down for maintenance") ||
			rec.Header().Get("Content-Length") != strconv.Itoa(len(maintenanceHTML)) ||
			rec.Header().Get("Cache-Control") != "no-cache" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("retry %v: %d %v %q, want 503 Retry-After %s", c.retry, rec.Code, rec.Header(), rec.Body, c.want)
		}
		if rec := serve("HEAD", "/"); rec.Code != 503 || rec.Body.Len() != 0 || rec.Header().Get("Retry-After") != c.want {
			t.Errorf("HEAD: %d %q %v", rec.Code, rec.Body, rec.Header())
		}
		for _, p := range []string{"/.well-known/acme-challenge/x", "/.well-known/security.txt"} {
			if rec := serve("GET", p); rec.Code != 200 || rec.Body.String() != "content" {
				t.Errorf("%s: %d %q, want it served", p, rec.Code, rec.Body)
			}
		}
		for _, p := range []string{"/.well-known", "/.well-knownx/a", "/x/.well-known/a"} {
			if rec := serve("GET", p); rec.Code != 503 {
				t.Errorf("%s: %d, want 503", p, rec.Code)
			}
		}
	}
}
