package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestLanguages(t *testing.T) {
	dir := t.TempDir()
	head := "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\n"
	c, err := Parse("a.toml", []byte(head+"languages = [\"en\", \"de\", \"pt-BR\"]\ndefault_language = \"de\"\n"+
		"[[site.redirect]]\nfrom = \"^/$\"\nto = \"/de/\"\nlanguages = [\"de\", \"de-AT\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sites[0]
	if strings.Join(s.Languages, ",") != "en,de,pt-BR" || s.DefaultLanguage != "de" || len(s.Rules().Redirects) != 1 {
		t.Fatalf("site: %+v", s)
	}
	// Breton is fine where no Brotli sidecar can be mistaken for it.
	if _, err := Parse("a.toml", []byte(head+"languages = [\"en\", \"br\"]\nprecompressed = false\n")); err != nil {
		t.Errorf("br without sidecars: %v", err)
	}

	var many, manyRules strings.Builder
	many.WriteString("languages = [")
	for i := range 33 {
		tag := fmt.Sprintf("x%c%c", 'a'+i/26, 'a'+i%26)
		fmt.Fprintf(&many, "%q, ", tag)
		fmt.Fprintf(&manyRules, "[[site.redirect]]\nfrom = \"^/$\"\nto = \"/%s/\"\nlanguages = [%q]\n", tag, tag)
	}
	many.WriteString("]\n")
	tests := []struct {
		name, toml, want string
	}{
		{"bad tag", "languages = [\"en\", \"english\"]\n", `a.toml:5: languages: "english" is not a language tag`},
		{"twice", "languages = [\"en\", \"EN\"]\n", `a.toml:5: languages: "EN" listed twice`},
		{"sidecar suffix", "languages = [\"br\"]\n", `a.toml:5: languages: "br" is also the suffix of precompressed sidecars`},
		{"too many", many.String(), "a.toml:5: languages: 33 listed, at most 32"},
		{"default without languages", "default_language = \"en\"\n", `a.toml:5: default_language "en" needs languages`},
		{"default not listed", "languages = [\"en\"]\ndefault_language = \"de\"\n", `a.toml:6: default_language "de" is not one of languages`},
		{"bad rule tag", "[[site.redirect]]\nfrom = \"^/$\"\nto = \"/de/\"\nlanguages = [\"de_DE\"]\n", `a.toml:5: redirect: languages: "de_DE" is not a language tag`},
		{"bad rewrite tag", "[[site.rewrite]]\nfrom = \"^/$\"\nto = \"/de/\"\nlanguages = [\"*\"]\n", `a.toml:5: rewrite: languages: "*" is not a language tag`},
		{"too many rule languages", manyRules.String(), "a.toml:3: the redirect and rewrite rules name 33 languages in all, at most 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(head+tt.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
