package serve

import (
	"net/http"
	"path"
	"slices"
	"strings"

	"appliance/compress"
	"appliance/internal/language"
)

// Language variants (RFC 9110 sections 8.5 and 12.5.4). With
// Options.Languages set, files named NAME.TAG beside NAME, for a TAG the
// site lists (index.html.de, about.html.pt-BR), are the variants of
// NAME in that language, and a request for NAME gets the one its
// Accept-Language prefers, or the default language's. The untagged NAME,
// when it exists, is the default language's variant unless
// NAME.DEFAULT exists too. Each variant is a file of its own in the
// cache entry of NAME: its own representation, content codings,
// sidecars (index.html.de.br) and validators, so that preconditions and
// ranges apply to the variant served. A request for NAME.TAG serves that
// file as it is. A file without variants costs one inlined nil check.

// Shared Vary values of negotiated responses.
var (
	hdrVaryLanguage = []string{"Accept-Language"}
	hdrVaryBoth     = []string{"Accept-Encoding, Accept-Language"}
)

// langFile is one language variant of a file as resolved: the index of
// its language in Handler.langs, and its identity and sidecars.
type langFile struct {
	lang int
	name string
	id   fileID
	side sidecarIDs
}

// languageOrder returns the site's languages with the default first,
// which is the order Negotiate breaks ties in, and their Content-Language
// values.
func languageOrder(tags []string, def string) ([]string, [][]string) {
	if len(tags) == 0 {
		return nil, nil
	}
	if def == "" {
		def = tags[0]
	}
	order := []string{def}
	for _, t := range tags {
		if !strings.EqualFold(t, def) {
			order = append(order, t)
		}
	}
	header := make([][]string, len(order))
	for i, t := range order {
		header[i] = []string{t}
	}
	return order, header
}

// file resolves name as a file to serve: name itself, with its language
// variants when the site has languages. It reports whether either exists.
func (h *Handler) file(name string) (resolution, bool) {
	res := resolution{kind: kindNotFound}
	if fi, err := h.stat(name); err == nil && fi.Mode().IsRegular() {
		res = resolution{kind: kindFile, name: name, id: idOf(fi)}
	}
	res = h.withLanguages(res, name)
	return res, res.kind == kindFile
}

// withLanguages adds to res, the resolution of name (a file or not
// found), the language variants of name. The variant served when the
// client accepts none comes first: the default language's, or else the
// first in the site's order.
func (h *Handler) withLanguages(res resolution, name string) resolution {
	if len(h.langs) == 0 || h.languageOf(name) >= 0 {
		return res // no languages, or a variant asked for by its own name
	}
	var files []langFile
	for i, tag := range h.langs {
		vname := name + "." + tag
		if fi, err := h.stat(vname); err == nil && fi.Mode().IsRegular() {
			files = append(files, langFile{lang: i, name: vname, id: idOf(fi)})
		}
	}
	if len(files) == 0 {
		return res
	}
	if res.kind == kindFile && files[0].lang != 0 {
		// The untagged file is the default language's variant.
		files = append([]langFile{{lang: 0, name: res.name, id: res.id}}, files...)
	}
	return resolution{kind: kindFile, name: files[0].name, id: files[0].id, langs: files}
}

// languageOf returns the index of the site language that name's last
// extension names ("index.html.de"), or -1.
func (h *Handler) languageOf(name string) int {
	ext := path.Ext(name)
	if ext == "" {
		return -1
	}
	for i, tag := range h.langs {
		if strings.EqualFold(ext[1:], tag) {
			return i
		}
	}
	return -1
}

// languageEntry loads the variants of res into ne, or returns a
// not-found entry if one cannot be read (the next check resolves again).
// A variant takes its media type from the untagged name, and its
// language into its entity tags (`"….de"`, `"….de-br"`), so that no two
// representations of the resource share a tag even when their bytes
// are the same.
func (h *Handler) languageEntry(ne *entry, res resolution) *entry {
	ne.langs = res.langs
	vary := hdrVaryLanguage
	for _, lf := range res.langs {
		rep, err := loadRepresentation(h.fsys, lf.name, h.cache, nil)
		if err != nil {
			return &entry{kind: kindNotFound}
		}
		tag := h.langs[lf.lang]
		rep.ContentType = contentType(strings.TrimSuffix(lf.name, "."+tag), h.opts.Types)
		rep.lang = tag
		rep.ETag = rep.ETag[:len(rep.ETag)-1] + "." + tag + `"`
		rep.prepareHeader()
		h.setOffered(rep, lf.side)
		if rep.offered != 0 {
			vary = hdrVaryBoth
		}
		ne.reps = append(ne.reps, rep)
		ne.tags = append(ne.tags, tag)
	}
	ne.rep, ne.id, ne.vary = ne.reps[0], ne.reps[0].id, vary
	return ne
}

// languageBytes is what the variants besides e.rep hold in memory.
func (e *entry) languageBytes() int64 {
	var n int64
	for _, rep := range e.reps[min(1, len(e.reps)):] {
		n += int64(len(rep.Data))
	}
	return n
}

// chooseLanguage returns the variant of e to serve to r and its
// Content-Language value: e.rep and nil for a file without variants.
// When the client accepts none of them, or sends no Accept-Language, it
// is the default, never 406.
func (h *Handler) chooseLanguage(r *http.Request, e *entry) (*representation, []string) {
	if e.reps == nil {
		return e.rep, nil // inlined: what a site without variants pays
	}
	return h.negotiateLanguage(r, e)
}

func (h *Handler) negotiateLanguage(r *http.Request, e *entry) (*representation, []string) {
	i, _ := language.Negotiate(r.Header["Accept-Language"], e.tags)
	return e.reps[i], h.langHeader[e.langs[i].lang]
}

// tagSuffix tells the representations of r in coding c apart from those
// of the other languages and codings in their entity tags.
func (r *representation) tagSuffix(c compress.Coding) string {
	if r.lang == "" {
		return c.ETagSuffix()
	}
	return "." + r.lang + c.ETagSuffix()
}

// varyEncoding is the Vary of a response that depends on Accept-Encoding,
// given the Vary set so far: Accept-Language stays if it was there.
func varyEncoding(v []string) []string {
	if len(v) == 1 && strings.Contains(v[0], "Accept-Language") {
		return hdrVaryBoth
	}
	return hdrVary
}

// errorPage returns the variant of the error page e to send to r, and
// notes in the response that it depends on Accept-Language.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, e *entry) *representation {
	rep, lang := h.chooseLanguage(r, e)
	if lang == nil || rep.Data == nil {
		return e.rep
	}
	hd := w.Header()
	hd["Content-Language"] = lang
	switch v := hd["Vary"]; {
	case len(v) == 0:
		hd["Vary"] = hdrVaryLanguage
	case len(v) == 1 && v[0] == hdrVary[0]:
		hd["Vary"] = hdrVaryBoth
	case !slices.ContainsFunc(v, func(f string) bool { return strings.Contains(f, "Accept-Language") }):
		hd["Vary"] = append(v[:len(v):len(v)], "Accept-Language") // a listing's Accept, say
	}
	return rep
}
