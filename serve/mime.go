package serve

import (
	"path"
	"strings"
)

// builtinTypes maps lower-case file extensions to media types. Unknown
// extensions are served as application/octet-stream, never sniffed.
var builtinTypes = map[string]string{
	".html": "text/html", ".htm": "text/html", ".shtml": "text/html",
	".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript",
	".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown",
	".csv": "text/csv", ".tsv": "text/tab-separated-values",
	".ics": "text/calendar", ".vcf": "text/vcard", ".vtt": "text/vtt",
	".xml": "application/xml", ".xsl": "application/xml", ".xhtml": "application/xhtml+xml",
	".json": "application/json", ".map": "application/json", ".jsonld": "application/ld+json",
	".webmanifest": "application/manifest+json", ".rss": "application/rss+xml",
	".atom": "application/atom+xml", ".yaml": "application/yaml", ".yml": "application/yaml",
	".toml": "application/toml", ".wasm": "application/wasm", ".pdf": "application/pdf",
	".svg": "image/svg+xml", ".svgz": "image/svg+xml", ".png": "image/png",
	".apng": "image/apng", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif",
	".ico": "image/vnd.microsoft.icon", ".bmp": "image/bmp", ".tif": "image/tiff",
	".tiff": "image/tiff", ".jxl": "image/jxl", ".heic": "image/heic",
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".eot": "application/vnd.ms-fontobject",
	".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
	".mov": "video/quicktime", ".mkv": "video/x-matroska", ".ts": "video/mp2t",
	".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
	".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".oga": "audio/ogg",
	".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac",
	".mid": "audio/midi", ".midi": "audio/midi",
	".zip": "application/zip", ".gz": "application/gzip", ".tgz": "application/gzip",
	".tar": "application/x-tar", ".bz2": "application/x-bzip2", ".xz": "application/x-xz",
	".zst": "application/zstd", ".br": "application/octet-stream", ".7z": "application/x-7z-compressed",
	".rar": "application/vnd.rar", ".deb": "application/vnd.debian.binary-package",
	".epub": "application/epub+zip", ".jar": "application/java-archive",
	".doc": "application/msword", ".xls": "application/vnd.ms-excel",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text", ".rtf": "application/rtf",
	".gpx": "application/gpx+xml", ".kml": "application/vnd.google-earth.kml+xml",
}

// textual reports whether a media type is text that gets "; charset=utf-8".
func textual(t string) bool {
	if strings.HasPrefix(t, "text/") {
		return true
	}
	switch t {
	case "application/json", "application/xml", "application/xhtml+xml", "application/ld+json",
		"application/manifest+json", "application/rss+xml", "application/atom+xml",
		"application/yaml", "application/toml", "image/svg+xml":
		return true
	}
	return false
}

// contentType returns the Content-Type for a file name: the site's own
// table first, then the built-in one.
func contentType(name string, extra map[string]string) string {
	ext := strings.ToLower(path.Ext(name))
	t, ok := extra[ext]
	if !ok {
		t, ok = builtinTypes[ext]
	}
	if !ok {
		return "application/octet-stream"
	}
	if textual(t) && !strings.Contains(t, ";") {
		return t + "; charset=utf-8"
	}
	return t
}
