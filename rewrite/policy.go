package rewrite

import (
	"fmt"
	"strings"
)

// The site-wide policies of Rules, each parsed once from its config
// string: the engine only ever sees a value that is valid.

// TrailingSlash is a site's trailing_slash policy.
type TrailingSlash int

const (
	TrailingSlashKeep   TrailingSlash = iota // "": paths are served as asked
	TrailingSlashAdd                         // "add": /x redirects to /x/ unless /x is a file
	TrailingSlashRemove                      // "remove": /x/ redirects to /x unless it is a directory
)

// ParseTrailingSlash parses a trailing_slash value: "", "add" or "remove".
func ParseTrailingSlash(s string) (TrailingSlash, error) {
	switch s {
	case "":
		return TrailingSlashKeep, nil
	case "add":
		return TrailingSlashAdd, nil
	case "remove":
		return TrailingSlashRemove, nil
	}
	return TrailingSlashKeep, fmt.Errorf("trailing_slash %q: want add or remove", s)
}

// SecurityPreset is a site's security_headers preset.
type SecurityPreset int

const (
	SecurityOff    SecurityPreset = iota // "" or "off": no headers added
	SecurityBasic                        // "basic"
	SecurityStrict                       // "strict"
)

// ParseSecurityPreset parses a security_headers value: "", "off", "basic"
// or "strict".
func ParseSecurityPreset(s string) (SecurityPreset, error) {
	switch s {
	case "", "off":
		return SecurityOff, nil
	case "basic":
		return SecurityBasic, nil
	case "strict":
		return SecurityStrict, nil
	}
	return SecurityOff, fmt.Errorf("security_headers %q: want basic, strict or off", s)
}

// Security header presets (HSTS belongs to the TLS listener), added to
// responses that lack them.
var presets = map[SecurityPreset][][2]string{
	SecurityBasic: {
		{"Referrer-Policy", "strict-origin-when-cross-origin"},
		{"X-Frame-Options", "SAMEORIGIN"},
		{"Permissions-Policy", "camera=(), microphone=(), geolocation=()"},
	},
	SecurityStrict: {
		{"Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"},
		{"Referrer-Policy", "no-referrer"},
		{"X-Frame-Options", "DENY"},
		{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
	},
}

// ParseRedirectTo parses a whole-host redirect target: "" (none) or
// http(s)://host[:port] without a path. It returns the target without a
// trailing slash, ready to take the request's path.
func ParseRedirectTo(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return "", fmt.Errorf("redirect_to %q: want http(s)://host", s)
	}
	rest := s[strings.Index(s, "//")+2:]
	host, p, _ := strings.Cut(rest, "/")
	if host == "" || strings.ContainsAny(host, "$?#\\@ ") || strings.Trim(p, "/") != "" {
		return "", fmt.Errorf("redirect_to %q: want http(s)://host[:port] without a path", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// ParseFallback parses a single-page-app shell path: "" (none) or a file
// path starting with /.
func ParseFallback(s string) (string, error) {
	if s != "" && (!strings.HasPrefix(s, "/") || strings.Contains(s, "..")) {
		return "", fmt.Errorf("fallback %q must be a file path starting with /", s)
	}
	return s, nil
}
