package language

import (
	"fmt"
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	site := []string{"en", "de", "fr", "pt-BR"} // default first
	tests := []struct {
		name    string
		accept  []string // nil: no header
		offered []string
		want    string // "" : none acceptable
	}{
		{"no header", nil, site, ""},
		{"empty header", []string{""}, site, ""},
		{"exact", []string{"de"}, site, "de"},
		{"case-insensitive", []string{"DE"}, site, "de"},
		{"tag case-insensitive", []string{"pt-br"}, site, "pt-BR"},
		{"weights", []string{"de;q=0.5, fr;q=0.8"}, site, "fr"},
		{"browser", []string{"de-CH,de;q=0.9,en;q=0.8"}, site, "de"},
		{"range prefix of tag", []string{"pt"}, site, "pt-BR"},
		{"tag prefix of range", []string{"de-CH"}, site, "de"},
		{"tag prefix of range, weighted", []string{"de-AT;q=0.3, fr;q=0.2"}, site, "de"},
		{"prefix ends at a hyphen", []string{"d, e, pt-B"}, site, ""},
		{"longest range decides", []string{"pt;q=0.9, pt-BR;q=0.1, fr;q=0.5"}, site, "fr"},
		{"exact beats prefix at equal weight", []string{"de-CH"}, []string{"de", "de-CH"}, "de-CH"},
		{"exact beats filtered prefix", []string{"de"}, []string{"de-CH", "de"}, "de"},
		{"q=0 excludes", []string{"de;q=0, fr;q=0.1"}, site, "fr"},
		{"q=0 excludes a prefix match", []string{"pt;q=0, *"}, []string{"pt-BR", "es"}, "es"},
		{"q=0 on a longer range excludes nothing shorter", []string{"de-CH;q=0, *;q=0.5"}, site, "en"},
		{"all excluded", []string{"de;q=0"}, site, ""},
		{"unknown only", []string{"ja, ko"}, site, ""},
		{"star takes the server's order", []string{"*"}, site, "en"},
		{"star below named", []string{"*, fr"}, site, "fr"},
		{"star with exclusion", []string{"*, en;q=0"}, site, "de"},
		{"star q=0", []string{"*;q=0, fr;q=0.2"}, site, "fr"},
		{"earlier range wins a tie", []string{"fr, de"}, site, "fr"},
		{"truncation keeps the range's place", []string{"de-CH, en"}, site, "de"},
		{"server's order breaks the rest", []string{"pt, de"}, []string{"pt-PT", "pt-BR"}, "pt-PT"},
		{"several lines", []string{"fr;q=0.5", "de"}, site, "de"},
		{"whitespace", []string{"  fr ;  q=0.5 ,\tde ; q=0.9 "}, site, "de"},
		{"empty elements", []string{",,fr,,"}, site, "fr"},
		{"invalid q skipped", []string{"de;q=2, fr;q=0.1"}, site, "fr"},
		{"invalid range skipped", []string{"d e, de_CH, de-, -de, fr;q=0.1"}, site, "fr"},
		{"long subtag", []string{"de-abcdefghi"}, site, ""},
		{"digits in subtags", []string{"es-419"}, []string{"en", "es-419"}, "es-419"},
		{"other parameters", []string{"fr;x=y;q=0.9, de;q=0.8"}, site, "fr"},
		{"garbage", []string{";;;=,q=,*;q"}, site, ""},
	}
	for _, tt := range tests {
		got, ok := Negotiate(tt.accept, tt.offered)
		name := ""
		if ok {
			name = tt.offered[got]
		}
		if name != tt.want {
			t.Errorf("%s: Negotiate(%q, %q) = %q, want %q", tt.name, tt.accept, tt.offered, name, tt.want)
		}
	}
}

// TestNegotiateReadsAtMostMaxRanges states the bound: the 32nd element
// of the field is read, the 33rd is not, however the lines split them.
func TestNegotiateReadsAtMostMaxRanges(t *testing.T) {
	if MaxRanges != 32 {
		t.Fatalf("MaxRanges = %d; the README states 32", MaxRanges)
	}
	junk := strings.Repeat("xx, ", MaxRanges-1)
	offered := []string{"en", "de"}
	if i, ok := Negotiate([]string{junk + "de"}, offered); !ok || offered[i] != "de" {
		t.Errorf("the %dth range was not read", MaxRanges)
	}
	if _, ok := Negotiate([]string{junk + "xx, de"}, offered); ok {
		t.Errorf("the %dth range was read", MaxRanges+1)
	}
	lines := make([]string, 0, 10000)
	for range 10000 {
		lines = append(lines, "xx")
	}
	if _, ok := Negotiate(append(lines, "de"), offered); ok {
		t.Errorf("a range after %d lines was read", len(lines))
	}
}

func TestNegotiateDoesNotAllocate(t *testing.T) {
	accept := []string{"de-CH,de;q=0.9,en;q=0.8,fr;q=0.7,*;q=0.1"}
	offered := []string{"en", "de", "fr", "pt-BR"}
	if n := testing.AllocsPerRun(100, func() { Negotiate(accept, offered) }); n != 0 {
		t.Errorf("Negotiate allocates %v times", n)
	}
}

func TestValid(t *testing.T) {
	for _, s := range []string{"de", "DE", "gsw", "pt-BR", "zh-Hant-TW", "es-419", "sl-rozaj-biske"} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	for _, s := range []string{"", "d", "deut", "*", "de-", "-de", "de_CH", "de CH", "de-abcdefghi", "1a", "de--CH", "dé", "x-klingon"} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

// reference is Negotiate written the obvious way, to compare against.
func reference(accept []string, offered []string) (int, bool) {
	type rng struct {
		r   string
		q   int
		pos int
	}
	var ranges []rng
	var elems []string
	for _, line := range accept {
		elems = append(elems, strings.Split(line, ",")...)
	}
	if len(elems) > MaxRanges {
		elems = elems[:MaxRanges]
	}
	for pos, e := range elems {
		parts := strings.Split(e, ";")
		r := asciiLower(strings.TrimSpace(parts[0]))
		if !validRange(r) {
			continue
		}
		q, ok := 1000, true
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.ToLower(strings.TrimSpace(k)) == "q" {
				var n int
				v = strings.TrimSpace(v)
				switch {
				case v == "0" || v == "1":
					n = int(v[0]-'0') * 1000
				case len(v) >= 2 && len(v) <= 5 && (v[:2] == "0." || v[:2] == "1."):
					digits := (v[2:] + "000")[:3]
					if _, err := fmt.Sscanf(digits, "%03d", &n); err != nil || strings.Trim(v[2:], "0123456789") != "" {
						ok = false
					}
					n += int(v[0]-'0') * 1000
				default:
					ok = false
				}
				if n > 1000 {
					ok = false
				}
				q = n
			}
		}
		if ok {
			ranges = append(ranges, rng{r, q, pos})
		}
	}
	best, bestKey := -1, [5]int{}
	for i, tag := range offered[:min(len(offered), MaxOffered)] {
		t := asciiLower(tag)
		kind, q, pos, spec := 0, 0, 0, 0
		for _, r := range ranges {
			k, s := 0, 0
			switch {
			case r.r == "*":
				k = 1
			case r.r == t:
				k, s = 3, 2*len(t)+1
			case strings.HasPrefix(t, r.r+"-"):
				k, s = 3, 2*len(r.r)
			case strings.HasPrefix(r.r, t+"-") && r.q > 0:
				k = 2
			}
			if k > kind || k == kind && k != 0 && (s > spec || s == spec && r.q > q) {
				kind, q, pos, spec = k, r.q, r.pos, s
			}
		}
		if q == 0 {
			continue
		}
		named := 0
		if kind > 1 {
			named = 1
		}
		key := [5]int{q, named, -pos, spec, -i}
		if best < 0 || greater(key, bestKey) {
			best, bestKey = i, key
		}
	}
	return max(best, 0), best >= 0
}

// asciiLower folds A-Z only, as tags and ranges are ASCII.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func greater(a, b [5]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func FuzzAcceptLanguage(f *testing.F) {
	for _, s := range []string{
		"de-CH,de;q=0.9,en;q=0.8", "*", "*;q=0, fr", "pt, de", "de-CH;q=0, *;q=0.5",
		"en-US, en;q=0.9, de;q=0.8, *;q=0.1", ",;=q", "DE-ch;Q=1.000", "es-419;q=0.001",
		strings.Repeat("de, ", 40) + "fr",
	} {
		f.Add(s, "en,de,fr,pt-BR,de-CH")
	}
	f.Fuzz(func(t *testing.T, accept, offeredList string) {
		offered := strings.Split(offeredList, ",")
		i, ok := Negotiate([]string{accept}, offered)
		if ok && (i < 0 || i >= len(offered) || i >= MaxOffered) {
			t.Fatalf("Negotiate(%q, %q) = %d, out of range", accept, offered, i)
		}
		j, rok := reference([]string{accept}, offered)
		if ok != rok || ok && i != j {
			t.Fatalf("Negotiate(%q, %q) = %d, %v; the reference says %d, %v", accept, offered, i, ok, j, rok)
		}
	})
}
