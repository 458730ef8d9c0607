package compress

import (
	"strings"

	"appliance/internal/httpx"
)

// Negotiate chooses the coding of a response from the Accept-Encoding
// field lines of a request and the codings offered for the resource
// (RFC 9110 section 12.5.3). Higher weights win; among equal weights the
// server's order (zstd, br, gzip, deflate, identity) decides. Identity is
// acceptable unless "identity;q=0" or "*;q=0" excludes it, and then it
// ranks below every coding the client named. Without the header, identity
// is chosen. It returns false when nothing offered is acceptable (406).
// Malformed elements are skipped, never an error.
func Negotiate(accept []string, offered Set) (Coding, bool) {
	offered = offered.With(Identity)
	if len(accept) == 0 {
		return Identity, true
	}
	var weight [NumCodings]int // per mille; -1: not named
	for i := range weight {
		weight[i] = -1
	}
	star := -1
	for _, line := range accept {
		for elem := range strings.SplitSeq(line, ",") {
			name, params, _ := strings.Cut(elem, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			w, ok := httpx.ParseWeight(params)
			if !ok {
				continue
			}
			if name == "*" {
				if star < 0 {
					star = w
				}
				continue
			}
			if c, ok := Parse(name); ok && weight[c] < 0 {
				weight[c] = w // the first mention counts
			}
		}
	}
	best, bestW := Identity, 0
	for c := range NumCodings {
		if !offered.Has(c) {
			continue
		}
		w := weight[c]
		if w < 0 {
			w = star
		}
		if c == Identity && w < 0 {
			w = 0 // implicitly acceptable, below anything named
			if bestW == 0 {
				return Identity, true
			}
		}
		if w > bestW {
			best, bestW = c, w
		}
	}
	if bestW == 0 {
		return 0, false
	}
	return best, true
}
