package rewrite

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"appliance/internal/httpx"
	"appliance/internal/language"
)

// The languages condition: a redirect or rewrite with Cond.Languages
// holds when, among every language the site's rules name, the request's
// Accept-Language prefers one of the rule's (package language decides,
// as it does for the file server's variants). A site laid out as /de/,
// /en/ sends "/" to the client's language with one rule per language and
// a last one without the condition for everyone else. Every response to
// a request whose Accept-Language a rule consulted carries
// "Vary: Accept-Language", the redirects and what the rules let through
// alike, so that no cache hands one language's answer to another.

// compileLanguages checks the tags of a languages condition.
func compileLanguages(tags []string) ([]string, error) {
	if len(tags) > language.MaxOffered {
		return nil, fmt.Errorf("languages: %d tags, at most %d", len(tags), language.MaxOffered)
	}
	for _, t := range tags {
		if !language.Valid(t) {
			return nil, fmt.Errorf("languages: %q is not a language tag (like de, en, pt-BR)", t)
		}
	}
	return tags, nil
}

// ruleLanguages returns every language the rules' conditions name, once
// each, in the order they first appear: the languages a request's
// Accept-Language is weighed against.
func ruleLanguages(rules Rules) []string {
	var out []string
	add := func(c *cond) {
		for _, t := range c.languages {
			if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, t) }) {
				out = append(out, t)
			}
		}
	}
	for _, rd := range rules.Redirects {
		add(&rd.cond)
	}
	for _, rw := range rules.Rewrites {
		add(&rw.cond)
	}
	return out
}

// CheckLanguages refuses rules whose languages conditions name more
// than language.MaxOffered languages in all: a request's
// Accept-Language is weighed against that many at most, so a rule
// naming one past them would never hold.
func (r Rules) CheckLanguages() error {
	if n := len(ruleLanguages(r)); n > language.MaxOffered {
		return fmt.Errorf("the redirect and rewrite rules name %d languages in all, at most %d", n, language.MaxOffered)
	}
	return nil
}

// langChoice is the rule language a request prefers, chosen when a rule
// first asks.
type langChoice struct {
	asked bool
	lang  string // "" when the client accepts none of them
}

// prefers reports whether the request's preferred rule language is one
// of tags.
func (e *engine) prefers(lc *langChoice, accept []string, tags []string) bool {
	if !lc.asked {
		lc.asked = true
		if i, ok := language.Negotiate(accept, e.langs); ok {
			lc.lang = e.langs[i]
		}
	}
	return lc.lang != "" && slices.ContainsFunc(tags, func(t string) bool { return strings.EqualFold(t, lc.lang) })
}

// varyWriter adds Accept-Language to the Vary of a response once a rule
// has consulted it, whatever answers: a redirect, an error, the file
// server (which sets its own Vary first).
type varyWriter struct {
	httpx.HookWriter
	lc langChoice
}

// BeforeHeader adds Accept-Language to Vary if a rule consulted it.
func (w *varyWriter) BeforeHeader(h http.Header, status int) int {
	if !w.lc.asked {
		return status
	}
	v := h["Vary"]
	if httpguts.HeaderValuesContainsToken(v, "Accept-Language") {
		return status
	}
	h["Vary"] = append(v[:len(v):len(v)], "Accept-Language")
	return status
}
