package serve

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Limits that keep a Range request from costing more than the whole file.
const (
	maxRangeSpecs = 100 // more specs than this: the header is ignored
	maxRangeParts = 32  // more parts after coalescing: the header is ignored
	coalesceGap   = 0   // merge ranges that overlap or touch; gaps stay separate parts
)

// errUnsatisfiable means no range overlaps the representation: 416.
var errUnsatisfiable = errors.New("range not satisfiable")

// byteRange is a satisfiable range clipped to the representation.
type byteRange struct {
	start, length int64
}

func (r byteRange) end() int64 { return r.start + r.length } // exclusive

func (r byteRange) contentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.start, 10) + "-" +
		strconv.FormatInt(r.end()-1, 10) + "/" + strconv.FormatInt(size, 10)
}

// parseRange parses a Range field value (RFC 9110 section 14.1.1) against a
// representation of size bytes. It returns nil ranges and a nil error when
// the header is to be ignored (other unit, invalid syntax, or an abusive
// request per section 14.2), errUnsatisfiable when nothing overlaps, and
// otherwise the ranges to send, coalesced, in the order requested.
func parseRange(s string, size int64) ([]byteRange, error) {
	unit, set, ok := strings.Cut(s, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, nil
	}
	var (
		ranges    []byteRange
		specs     int
		requested int64
	)
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // empty list elements are allowed (RFC 9110 5.6.1)
		}
		if specs++; specs > maxRangeSpecs {
			return nil, nil
		}
		r, ok := parseRangeSpec(spec, size)
		if !ok {
			return nil, nil
		}
		if r.length == 0 {
			continue // unsatisfiable
		}
		requested += r.length
		ranges = append(ranges, r)
	}
	switch {
	case specs == 0:
		return nil, nil
	case len(ranges) == 0:
		return nil, errUnsatisfiable
	case len(ranges) == 1:
		return ranges, nil
	}
	return limitRanges(ranges, requested, size), nil
}

// parseRangeSpec parses one range-spec other than an empty list element:
// an int-range ("first-last" or "first-") or a suffix-range ("-length").
// It returns false if the spec is invalid, which voids the whole header,
// and a zero-length range if the spec is valid but unsatisfiable.
func parseRangeSpec(spec string, size int64) (byteRange, bool) {
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return byteRange{}, false
	}
	if first == "" {
		return parseSuffixRange(last, size)
	}
	return parseIntRange(first, last, size)
}

// parseSuffixRange parses the length of a suffix-range: the last n bytes,
// or the whole representation if it is shorter.
func parseSuffixRange(last string, size int64) (byteRange, bool) {
	n, ok := parseDigits(last)
	if !ok {
		return byteRange{}, false
	}
	if n == 0 || size == 0 {
		return byteRange{}, true // unsatisfiable
	}
	n = min(n, size)
	return byteRange{size - n, n}, true
}

// parseIntRange parses the positions of an int-range, last included and
// optional; a last position past the end is clipped to it.
func parseIntRange(first, last string, size int64) (byteRange, bool) {
	a, ok := parseDigits(first)
	if !ok {
		return byteRange{}, false
	}
	b := int64(-1)
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return byteRange{}, false
		}
	}
	if a >= size {
		return byteRange{}, true // unsatisfiable
	}
	if b < 0 || b >= size {
		b = size - 1
	}
	return byteRange{a, b - a + 1}, true
}

// limitRanges applies section 14.2's defences to two or more satisfiable
// ranges totalling requested bytes: it returns nil (send the whole
// representation) when they ask for more bytes than it holds or too many
// parts remain after coalescing, the coalesced ranges if any merged, and
// otherwise the ranges as given, in the order requested.
func limitRanges(ranges []byteRange, requested, size int64) []byteRange {
	// Asking for more bytes than the file holds only amplifies: send it whole.
	if requested > size {
		return nil
	}
	merged := coalesce(ranges)
	if len(merged) > maxRangeParts {
		return nil
	}
	if len(merged) == len(ranges) {
		return ranges // nothing coalesced: keep the requested order
	}
	return merged
}

// coalesce sorts ranges and merges those that overlap or nearly touch.
func coalesce(in []byteRange) []byteRange {
	rs := slices.Clone(in)
	slices.SortFunc(rs, func(a, b byteRange) int { return int(min(max(a.start-b.start, -1), 1)) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.start <= last.end()+coalesceGap {
			if r.end() > last.end() {
				last.length = r.end() - last.start
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// parseDigits parses 1*DIGIT without sign or spaces, refusing overflow.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
