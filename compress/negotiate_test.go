package compress

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	all := SetOf(Zstd, Brotli, Gzip, Deflate)
	gz := SetOf(Gzip, Deflate)
	none := Set(0)
	tests := []struct {
		name    string
		accept  []string // nil: no header
		offered Set
		want    Coding
		ok      bool
	}{
		{"no header", nil, all, Identity, true},
		{"empty header", []string{""}, all, Identity, true},
		{"gzip", []string{"gzip"}, all, Gzip, true},
		{"server preference among equals", []string{"gzip, deflate, br, zstd"}, all, Zstd, true},
		{"browser", []string{"gzip, deflate, br"}, all, Brotli, true},
		{"browser with zstd", []string{"gzip, deflate, br, zstd"}, all, Zstd, true},
		{"weights win", []string{"br;q=0.5, gzip;q=0.8"}, all, Gzip, true},
		{"weights win over preference", []string{"zstd;q=0.1, deflate"}, all, Deflate, true},
		{"case-insensitive", []string{"GZIP, Br"}, all, Brotli, true},
		{"Q uppercase", []string{"br;Q=0.1, gzip"}, all, Gzip, true},
		{"x-gzip", []string{"x-gzip"}, all, Gzip, true},
		{"only what is offered", []string{"br, zstd"}, gz, Identity, true},
		{"restricted site", []string{"gzip, br"}, gz, Gzip, true},
		{"not negotiable resource", []string{"gzip, br"}, none, Identity, true},
		{"q=0 excludes", []string{"gzip;q=0, deflate"}, gz, Deflate, true},
		{"all excluded falls to identity", []string{"gzip;q=0"}, gz, Identity, true},
		{"identity;q=0 with a coding", []string{"identity;q=0, gzip"}, all, Gzip, true},
		{"identity;q=0 nothing else", []string{"identity;q=0"}, all, 0, false},
		{"identity;q=0 nothing offered", []string{"identity;q=0, gzip"}, none, 0, false},
		{"star", []string{"*"}, all, Zstd, true},
		{"star with exclusions", []string{"*, zstd;q=0, br;q=0"}, all, Gzip, true},
		{"star;q=0 excludes identity", []string{"*;q=0"}, all, 0, false},
		{"star;q=0 with a coding", []string{"*;q=0, gzip"}, all, Gzip, true},
		{"star;q=0 identity allowed", []string{"*;q=0, identity"}, all, Identity, true},
		{"explicit identity wins on weight", []string{"identity, gzip;q=0.5"}, all, Identity, true},
		{"identity ties lose", []string{"identity, gzip"}, all, Gzip, true},
		{"implicit identity below named", []string{"gzip;q=0.001"}, all, Gzip, true},
		{"duplicate: first counts", []string{"gzip;q=0, gzip;q=1, deflate;q=0.5"}, all, Deflate, true},
		{"duplicate enabled first", []string{"gzip, gzip;q=0"}, all, Gzip, true},
		{"several field lines", []string{"gzip;q=0.5", "br"}, all, Brotli, true},
		{"whitespace", []string{"  gzip ;  q=0.5 ,\tbr ; q=0.9 "}, all, Brotli, true},
		{"empty elements", []string{",,gzip,,"}, all, Gzip, true},
		{"unknown codings ignored", []string{"compress, sdch, gzip"}, all, Gzip, true},
		{"unknown only", []string{"lzma"}, all, Identity, true},
		{"invalid q skipped", []string{"br;q=2, gzip"}, all, Gzip, true},
		{"invalid q text", []string{"br;q=high, gzip;q=0.2"}, all, Gzip, true},
		{"q with four decimals", []string{"br;q=0.0001, gzip;q=0.1"}, all, Gzip, true},
		{"q=1.000", []string{"gzip;q=0.9, br;q=1.000"}, all, Brotli, true},
		{"q=1.001 invalid", []string{"gzip;q=0.9, br;q=1.001"}, all, Gzip, true},
		{"other parameters", []string{"gzip;level=9;q=0.5, deflate;q=0.4"}, all, Gzip, true},
		{"garbage", []string{";;;=,q=,*;q"}, all, Identity, true},
		{"deflate only", []string{"deflate"}, all, Deflate, true},
	}
	if len(tests) < 30 {
		t.Fatal("the issue asks for at least 30 cases")
	}
	for _, tt := range tests {
		got, ok := Negotiate(tt.accept, tt.offered)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("%s: Negotiate(%q, %b) = %v, %v; want %v, %v", tt.name, tt.accept, tt.offered, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseAndNames(t *testing.T) {
	for c := range NumCodings {
		got, ok := Parse(strings.ToUpper(c.String()))
		if !ok || got != c {
			t.Errorf("Parse(%q) = %v, %v", c, got, ok)
		}
	}
	if _, ok := Parse("compress"); ok {
		t.Error("compress parsed")
	}
}

func TestCompressible(t *testing.T) {
	yes := []string{"text/html; charset=utf-8", "text/css", "text/javascript", "application/json", "image/svg+xml",
		"application/wasm", "font/ttf", "application/manifest+json", "application/xml", "image/vnd.microsoft.icon"}
	no := []string{"image/png", "image/jpeg", "video/mp4", "application/zip", "application/gzip", "font/woff2", "font/woff",
		"application/octet-stream", "application/pdf", "audio/mpeg", "image/webp"}
	for _, ct := range yes {
		if !Compressible(ct) {
			t.Errorf("%s not compressible", ct)
		}
	}
	for _, ct := range no {
		if Compressible(ct) {
			t.Errorf("%s compressible", ct)
		}
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br", "*;q=0", "identity;q=0", "br;q=0.5,gzip;q=0.50", "x-gzip;Q=1.0", ",;=q", "zstd;q=0.001"} {
		f.Add(s, uint8(0x0f))
	}
	f.Fuzz(func(t *testing.T, accept string, offered uint8) {
		set := Set(offered) & All
		c, ok := Negotiate([]string{accept}, set)
		if !ok {
			return
		}
		if c >= NumCodings || c != Identity && !set.Has(c) {
			t.Fatalf("Negotiate(%q, %b) chose %v, which is not offered", accept, set, c)
		}
	})
}
