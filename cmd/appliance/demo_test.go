package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"appliance/config"
)

// TestDemoConditional: the embedded demo sends Last-Modified, and
// If-Modified-Since with it gets 304.
func TestDemoConditional(t *testing.T) {
	srv, err := newServer(config.Default(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.plainFallback.Handler)
	defer ts.Close()
	res, err := http.Get(ts.URL + "/style.css")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	lm := res.Header.Get("Last-Modified")
	if lm == "" {
		t.Fatal("no Last-Modified")
	}
	req, _ := http.NewRequest("GET", ts.URL+"/style.css", nil)
	req.Header.Set("If-Modified-Since", lm)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", res.StatusCode)
	}
	// Ranges still work on the wrapped embedded files.
	req, _ = http.NewRequest("GET", ts.URL+"/style.css", nil)
	req.Header.Set("Range", "bytes=0-3")
	req.Header.Set("Accept-Encoding", "identity")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readBody(res); res.StatusCode != http.StatusPartialContent || len(b) != 4 {
		t.Fatalf("range: %d %q", res.StatusCode, b)
	}
	res.Body.Close()
}
