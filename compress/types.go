package compress

import "strings"

// Compressible reports whether a media type is worth compressing: text,
// scripts, data formats, SVG, WebAssembly and uncompressed fonts. Images,
// audio, video, archives and WOFF fonts are compressed already.
func Compressible(contentType string) bool {
	t, _, _ := strings.Cut(contentType, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	if strings.HasPrefix(t, "text/") {
		return true
	}
	if strings.HasSuffix(t, "+json") || strings.HasSuffix(t, "+xml") {
		return true // manifest, ld+json, rss, atom, svg, xhtml, dash
	}
	switch t {
	case "application/javascript", "application/json", "application/xml", "application/wasm",
		"application/yaml", "application/toml", "application/x-javascript",
		"application/vnd.apple.mpegurl", "application/vnd.ms-fontobject", "application/rtf",
		"font/ttf", "font/otf", "font/collection",
		"image/vnd.microsoft.icon", "image/x-icon", "image/bmp":
		return true
	}
	return false
}
