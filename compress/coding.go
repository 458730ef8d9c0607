// Package compress owns content codings: negotiation of Accept-Encoding
// (RFC 9110 section 12.5.3), which media types are worth compressing, and
// the encoders, one-shot for cached variants and streaming for the rest.
package compress

import "strings"

// Coding is a content coding. The order of the constants is the server's
// preference among codings the client weighs equally.
type Coding uint8

const (
	Zstd Coding = iota
	Brotli
	Gzip
	Deflate  // the zlib format, as RFC 9110 8.4.1.2 defines "deflate"
	Identity // no coding
	NumCodings
)

var names = [NumCodings]string{"zstd", "br", "gzip", "deflate", "identity"}

// String returns the coding's token as used in Content-Encoding.
func (c Coding) String() string {
	if c < NumCodings {
		return names[c]
	}
	return "invalid"
}

// Sidecar returns the file suffix of a precompressed sidecar ("" if the
// coding has none): app.js.br is app.js in Brotli.
func (c Coding) Sidecar() string {
	switch c {
	case Zstd:
		return ".zst"
	case Brotli:
		return ".br"
	case Gzip:
		return ".gz"
	}
	return ""
}

// ETagSuffix tells representations of one file apart in their entity tags.
func (c Coding) ETagSuffix() string {
	switch c {
	case Zstd:
		return "-zst"
	case Brotli:
		return "-br"
	case Gzip:
		return "-gz"
	case Deflate:
		return "-zz"
	}
	return ""
}

// Parse returns the coding for a token, case-insensitively; "x-gzip" is
// gzip (RFC 9110 8.4.1.3).
func Parse(token string) (Coding, bool) {
	t := strings.ToLower(token)
	if t == "x-gzip" {
		return Gzip, true
	}
	for c, n := range names {
		if t == n {
			return Coding(c), true
		}
	}
	return 0, false
}

// Set is a set of codings.
type Set uint8

// All is every coding the server can produce, identity included.
const All Set = 1<<NumCodings - 1

// SetOf returns the set holding cs.
func SetOf(cs ...Coding) Set {
	var s Set
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

func (s Set) Has(c Coding) bool { return s&(1<<c) != 0 }

// With returns s plus c.
func (s Set) With(c Coding) Set { return s | 1<<c }
