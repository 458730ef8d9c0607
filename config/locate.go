package config

import (
	"strconv"
	"strings"
)

// keyLines maps each key of a TOML document to the line that defines it,
// with array-of-tables elements numbered: "server.http", "site.0",
// "site.1.root". The TOML decoder keeps positions to itself, so validation
// errors find their line here. It is a forgiving scanner, not a parser:
// the decoder has already accepted the document.
func keyLines(data string) map[string]int {
	lines := map[string]int{}
	count := map[string]int{} // array-of-tables path -> elements seen
	prefix := ""
	inString := "" // the delimiter of an open multi-line string
	for n, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if inString != "" {
			if strings.Count(line, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "[["):
			key := splitKey(strings.TrimPrefix(line, "[["))
			if len(key) == 0 {
				continue
			}
			name := key[len(key)-1]
			if len(key) > 1 {
				name = resolveTable(count, key[:len(key)-1]) + "." + name
			}
			count[name]++
			prefix = name + "." + strconv.Itoa(count[name]-1)
			lines[prefix] = n + 1
			continue
		case line[0] == '[':
			prefix = resolveTable(count, splitKey(line[1:]))
			lines[prefix] = n + 1
			continue
		}
		key := splitKey(line)
		if len(key) == 0 {
			continue
		}
		full := strings.Join(key, ".")
		if prefix != "" {
			full = prefix + "." + full
		}
		if _, seen := lines[full]; !seen {
			lines[full] = n + 1
		}
		for _, q := range []string{`"""`, `'''`} {
			if strings.Count(line, q)%2 == 1 {
				inString = q
			}
		}
	}
	return lines
}

// resolveTable numbers the array-of-tables components of a table path
// with their current element: [site.headers] inside the second [[site]]
// is "site.1.headers".
func resolveTable(count map[string]int, key []string) string {
	path := ""
	for _, k := range key {
		if path != "" {
			path += "."
		}
		path += k
		if c := count[path]; c > 0 {
			path += "." + strconv.Itoa(c-1)
		}
	}
	return path
}

// splitKey reads a dotted key (bare or quoted parts) from the start of s,
// up to "=" or "]". It returns nil if s does not start with a key.
func splitKey(s string) []string {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil
		}
		var part string
		switch s[0] {
		case '"', '\'':
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return nil
			}
			part, s = s[1:end+1], s[end+2:]
		default:
			i := 0
			for i < len(s) && (s[i] == '_' || s[i] == '-' || s[i] >= 'a' && s[i] <= 'z' ||
				s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
				i++
			}
			if i == 0 {
				return nil
			}
			part, s = s[:i], s[i:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil
		}
		switch s[0] {
		case '.':
			s = s[1:]
		case '=', ']':
			return parts
		default:
			return nil
		}
	}
}
