package httpx

import "strings"

// ParseWeight reads the parameters after an element of a proactive
// negotiation field (Accept, Accept-Encoding, Accept-Language) and
// returns its weight in per mille, 1000 when it has none (RFC 9110
// section 12.4.2); false if a weight is present but invalid, so that
// the caller skips the element.
func ParseWeight(params string) (int, bool) {
	w := 1000
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, ok := parseQ(strings.TrimSpace(v))
		if !ok {
			return 0, false
		}
		w = q
	}
	return w, true
}

// parseQ parses qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
func parseQ(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		q += int(s[i]-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}
