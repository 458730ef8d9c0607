package vhost

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestError(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		status       int
		preset       string // a Cache-Control the caller set
		body, length string
		cache        string
	}{
		{"404", "GET", 404, "", "404 Not Found\n", "14", "no-cache"},
		{"HEAD has no body", "HEAD", 404, "", "", "14", "no-cache"},
		{"the caller's Cache-Control stays", "GET", 401, "no-store", "401 Unauthorized\n", "17", "no-store"},
		{"421", "GET", 421, "", "421 Misdirected Request\n", "24", "no-cache"},
		{"a status net/http does not name", "GET", 599, "", "599 \n", "5", "no-cache"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if tc.preset != "" {
				rec.Header().Set("Cache-Control", tc.preset)
			}
			Error(rec, httptest.NewRequest(tc.method, "/", nil), tc.status)
			res := rec.Result()
			for k, v := range map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"Content-Length":         tc.length,
				"X-Content-Type-Options": "nosniff",
				"Cache-Control":          tc.cache,
			} {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if res.StatusCode != tc.status || rec.Body.String() != tc.body {
				t.Errorf("%d %q, want %d %q", res.StatusCode, rec.Body.String(), tc.status, tc.body)
			}
		})
	}
}

func TestErrorAllocs(t *testing.T) {
	w := &nullWriter{h: http.Header{}}
	r := httptest.NewRequest("GET", "/", nil)
	if n := testing.AllocsPerRun(100, func() { Error(w, r, http.StatusNotFound) }); n != 0 {
		t.Errorf("Error: %v allocations, want 0", n)
	}
}

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}
