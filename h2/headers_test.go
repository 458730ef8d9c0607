package h2

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestFieldCache: response fields are encoded once per connection and
// copied after; values that change per request (a header set per
// request, Content-Length of a range) are sent right, and the cache
// stays within maxCachedFields entries and maxCachedFieldBytes bytes.
func TestFieldCache(t *testing.T) {
	shared := []string{"shared-value"}
	srv := &Server{}
	addr := start(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Shared"] = shared
		h.Set("X-Unique", r.URL.Query().Get("n")+strings.Repeat("u", 100))
		h.Set("Connection", "close") // never sent
	}))
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
	const n = 1000
	for i := range n {
		id := uint32(2*i + 1)
		r.requestPath(id, "/?n="+strconv.Itoa(i))
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			h, ok := f.(*http2.MetaHeadersFrame)
			if !ok || h.StreamID != id {
				continue
			}
			got := map[string]string{}
			for _, hf := range h.Fields {
				got[hf.Name] = hf.Value
			}
			if got[":status"] != "200" || got["x-shared"] != "shared-value" || got["x-unique"] != strconv.Itoa(i)+strings.Repeat("u", 100) ||
				got["date"] == "" || got["connection"] != "" {
				t.Fatalf("request %d: %v", i, got)
			}
			break
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c := range srv.conns {
		c.mu.Lock()
		entries, bytes := len(c.fieldCache), len(c.fieldBytes)
		c.mu.Unlock()
		t.Logf("after %d responses with a new value each: %d fields cached in %d bytes", n, entries, bytes)
		if entries > maxCachedFields || bytes > maxCachedFieldBytes {
			t.Errorf("%d fields cached in %d bytes, want at most %d in %d", entries, bytes, maxCachedFields, maxCachedFieldBytes)
		}
	}
}
