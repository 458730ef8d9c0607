package serve

import (
	"strings"

	"appliance/internal/httpx"
)

// prefersJSON reports whether a listing goes out as JSON rather than
// HTML, by the Accept field lines (RFC 9110 section 12.5.1): each media
// type takes the weight of the most specific range that matches it
// (application/json, then application/*, then */*), and JSON wins on a
// higher weight, or on an equal nonzero one named more specifically
// ("application/json, */*"). Otherwise, with no Accept and when neither
// is acceptable, HTML: a listing is never refused. Parameters other than
// q are ignored; malformed elements are skipped.
func prefersJSON(accept []string) bool {
	var jsonQ, htmlQ weighed
	for _, line := range accept {
		for elem := range strings.SplitSeq(line, ",") {
			mr, params, _ := strings.Cut(elem, ";")
			typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(mr)), "/")
			if !ok || typ == "" || sub == "" || typ == "*" && sub != "*" {
				continue
			}
			w, ok := httpx.ParseWeight(params)
			if !ok {
				continue
			}
			jsonQ.match(typ, sub, "application", "json", w)
			htmlQ.match(typ, sub, "text", "html", w)
		}
	}
	if jsonQ.spec == 0 || jsonQ.q == 0 {
		return false
	}
	return jsonQ.q > htmlQ.q || jsonQ.q == htmlQ.q && jsonQ.spec > htmlQ.spec
}

// weighed is the weight of a media type under the most specific range
// that matched it so far: spec 3 for type/subtype, 2 for type/*, 1 for
// */*, 0 for none (q 0).
type weighed struct {
	q, spec int
}

// match applies the range typ/sub with weight w to the media type
// wantTyp/wantSub; among ranges equally specific, the first counts.
func (m *weighed) match(typ, sub, wantTyp, wantSub string, w int) {
	spec := 0
	switch {
	case typ == wantTyp && sub == wantSub:
		spec = 3
	case typ == wantTyp && sub == "*":
		spec = 2
	case typ == "*" && sub == "*":
		spec = 1
	}
	if spec > m.spec {
		m.q, m.spec = w, spec
	}
}
