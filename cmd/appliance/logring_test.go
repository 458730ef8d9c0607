package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestLogRing keeps the newest whole lines within its bound, whatever
// is written: many short lines, and lines longer than the bound.
func TestLogRing(t *testing.T) {
	r := newLogRing(100)
	if len(r.Bytes()) != 0 {
		t.Fatal("not empty at first")
	}
	for i := range 1000 {
		fmt.Fprintf(r, "line %d\n", i)
		b := r.Bytes()
		if len(b) > 100 || len(r.buf) > 200 {
			t.Fatalf("after line %d: %d bytes shown, %d held", i, len(b), len(r.buf))
		}
		if !bytes.HasSuffix(b, fmt.Appendf(nil, "line %d\n", i)) || !bytes.HasPrefix(b, []byte("line ")) {
			t.Fatalf("after line %d: %q", i, b)
		}
	}
	r.Write([]byte(strings.Repeat("x", 500) + "\n"))
	if b := r.Bytes(); string(b) != strings.Repeat("x", 99)+"\n" {
		t.Fatalf("a long line: %q", b)
	}
	r.Write([]byte("after\n"))
	if b := r.Bytes(); string(b) != "after\n" {
		t.Fatalf("after a long line: %q", b)
	}
}

// TestTeeRecent: a record goes to the original handler and, as text, to
// the ring.
func TestTeeRecent(t *testing.T) {
	var orig bytes.Buffer
	log, recent := teeRecent(slog.New(slog.NewJSONHandler(&orig, nil)))
	log.With("site", "a").Warn("reloading failed", "err", "a.toml:3: bad")
	log.Debug("not kept")
	if !strings.Contains(orig.String(), `"msg":"reloading failed"`) {
		t.Errorf("original handler: %q", orig.String())
	}
	got := string(recent.Bytes())
	if !strings.Contains(got, `level=WARN msg="reloading failed" site=a err="a.toml:3: bad"`) || !strings.HasPrefix(got, "time=") || strings.Count(got, "\n") != 1 {
		t.Errorf("ring: %q", got)
	}
	if log.Handler().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug records enabled")
	}
}
