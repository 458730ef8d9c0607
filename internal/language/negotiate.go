// Package language owns language negotiation: the Accept-Language field
// (RFC 9110 section 12.5.4) weighed against the language tags a server
// offers, with the matching of RFC 4647, and the syntax of those tags.
// Package serve uses it to choose among a file's language variants,
// package rewrite for the languages condition of its rules.
package language

import (
	"strings"

	"appliance/internal/httpx"
)

// MaxRanges bounds the work a hostile Accept-Language can cause: only the
// first MaxRanges elements of the field (all its lines together, malformed
// ones included) are read; the rest is ignored. A browser sends fewer
// than ten.
const MaxRanges = 32

// MaxOffered is the most languages one resource or one site's rules may
// offer; Negotiate ignores the ones past it, configurations refuse them.
const MaxOffered = 32

// match kinds, from the weakest: how a language range reached a tag.
const (
	none     = iota
	star     // "*"
	truncate // "de-CH" reaches "de": RFC 4647 lookup's fallback
	filter   // "de" reaches "de" and "de-CH": RFC 4647 basic filtering
)

// score is how well the field asks for one offered tag.
type score struct {
	q    int // weight in per mille
	pos  int // index of the range that set it
	kind int
	spec int // specificity among filter matches: longer ranges, exact ones
}

// better reports whether s ranks above t. Higher weight wins; at equal
// weight a named language beats "*", then the range listed first, then
// the more specific match. The caller breaks the remaining ties by the
// server's order.
func (s score) better(t score) bool {
	if s.q != t.q {
		return s.q > t.q
	}
	if (s.kind == star) != (t.kind == star) {
		return t.kind == star
	}
	if s.pos != t.pos {
		return s.pos < t.pos
	}
	return s.spec > t.spec
}

// Negotiate returns the index in offered of the language that the
// Accept-Language field lines prefer, offered being in the server's
// order of preference (its default first). A tag is reached by the
// longest range that equals it or is a prefix of it ending at a "-"
// ("de" reaches "de-CH"); failing that, by a longer range it is a prefix
// of ("de-CH" reaches "de"), unless that range has q=0; failing that, by
// "*". q=0 excludes. Ties: see score.better, then the server's order.
// It returns false when no offered language is acceptable, or the field
// is absent: the caller serves its default then, never 406. Malformed
// elements are skipped, never an error; it does not allocate.
func Negotiate(accept []string, offered []string) (int, bool) {
	if len(accept) == 0 || len(offered) == 0 {
		return 0, false
	}
	offered = offered[:min(len(offered), MaxOffered)]
	var board scoreboard
	n := 0
lines:
	for _, line := range accept {
		for elem := range strings.SplitSeq(line, ",") {
			if n == MaxRanges {
				break lines
			}
			n++
			if rng, q, ok := parseElement(elem); ok {
				board.weigh(offered, rng, q, n-1)
			}
		}
	}
	best := board.best(len(offered))
	if best < 0 {
		return 0, false
	}
	return best, true
}

// parseElement parses an element of the Accept-Language field: its
// language range and weight in per mille. ok is false for a malformed
// one.
func parseElement(elem string) (rng string, q int, ok bool) {
	rng, params, _ := strings.Cut(elem, ";")
	rng = strings.TrimSpace(rng)
	if !validRange(rng) {
		return "", 0, false
	}
	q, ok = httpx.ParseWeight(params)
	return rng, q, ok
}

// scoreboard holds the score of each offered tag, by index.
type scoreboard [MaxOffered]score

// weigh scores the offered tags that the range rng, of weight q and at
// position pos of the field, reaches. A truncated range of q=0 does not
// exclude.
func (b *scoreboard) weigh(offered []string, rng string, q, pos int) {
	for i, tag := range offered {
		s := reach(rng, tag)
		if s.kind == none || s.kind == truncate && q == 0 {
			continue
		}
		s.q, s.pos = q, pos
		if s.closer(b[i]) {
			b[i] = s
		}
	}
}

// closer reports whether s reaches its tag more closely than cur: by a
// stronger kind of match, then a more specific one, then with a higher
// weight. The closest range sets the tag's weight.
func (s score) closer(cur score) bool {
	if s.kind != cur.kind {
		return s.kind > cur.kind
	}
	if s.spec != cur.spec {
		return s.spec > cur.spec
	}
	return s.q > cur.q
}

// best returns the index of the best of the first n scores that is
// acceptable (reached, q > 0), the first of equals; -1 if none is.
func (b *scoreboard) best(n int) int {
	best := -1
	for i := range n {
		if b[i].q == 0 {
			continue // not reached, or excluded
		}
		if best < 0 || b[i].better(b[best]) {
			best = i
		}
	}
	return best
}

// reach returns how the language range rng reaches tag (kind and, for
// filter matches, specificity).
func reach(rng, tag string) score {
	switch {
	case rng == "*":
		return score{kind: star}
	case len(rng) == len(tag) && strings.EqualFold(rng, tag):
		return score{kind: filter, spec: 2*len(rng) + 1}
	case len(rng) < len(tag) && tag[len(rng)] == '-' && strings.EqualFold(tag[:len(rng)], rng):
		return score{kind: filter, spec: 2 * len(rng)}
	case len(tag) < len(rng) && rng[len(tag)] == '-' && strings.EqualFold(rng[:len(tag)], tag):
		return score{kind: truncate}
	}
	return score{}
}

// validRange reports whether s is a language-range of RFC 4647 section
// 2.1: 1*8ALPHA *("-" 1*8alphanum), or "*".
func validRange(s string) bool {
	if s == "*" {
		return true
	}
	return subtags(s)
}

// Valid reports whether tag is a language tag a site may offer: a primary
// language of two or three letters ("de", "gsw") and optional subtags of
// one to eight letters or digits ("pt-BR", "zh-Hant-TW", "es-419"), as
// BCP 47 writes them. Upper and lower case are the same language.
func Valid(tag string) bool {
	primary, _, _ := strings.Cut(tag, "-")
	return len(primary) >= 2 && len(primary) <= 3 && subtags(tag)
}

// subtags reports whether s is 1*8ALPHA *("-" 1*8alphanum).
func subtags(s string) bool {
	n, rest := 0, false
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '-' {
			if n == 0 || n > 8 {
				return false
			}
			n, rest = 0, true
			continue
		}
		c := s[i] | 0x20
		if !('a' <= c && c <= 'z' || rest && '0' <= s[i] && s[i] <= '9') {
			return false
		}
		n++
	}
	return true
}
