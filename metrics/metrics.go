// Package metrics counts requests per site and writes them, with gauges
// the rest of the server provides, in the Prometheus text format. It is
// written by hand: the client library would add megabytes to a binary
// meant for small boards.
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// durationBuckets are the bounds of the request duration histogram, in seconds.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Registry holds every site's counters and the gauges to report.
type Registry struct {
	mu     sync.Mutex
	sites  map[string]*Site
	gauges []gauge
}

// gauge is a metric the rest of the server provides: a gauge or a
// counter (kind, as the text format's TYPE line names it).
type gauge struct {
	name, help, kind string
	value            func() float64
	samples          func() []Sample // instead of value, for a labelled metric
}

// Sample is one value of a labelled metric.
type Sample struct {
	Labels []string // name, value, name, value...
	Value  float64
}

// New returns an empty registry.
func New() *Registry { return &Registry{sites: map[string]*Site{}} }

// Site counts one site's requests.
type Site struct {
	name     string
	codes    [600]atomic.Int64
	bytes    atomic.Int64
	buckets  []atomic.Int64 // cumulative counts per bucket, +Inf last
	sumNanos atomic.Int64
}

// Site returns the counters for a site, made on first use; they survive
// configuration reloads.
func (r *Registry) Site(name string) *Site {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sites[name]
	if !ok {
		s = &Site{name: name, buckets: make([]atomic.Int64, len(durationBuckets)+1)}
		r.sites[name] = s
	}
	return s
}

// Gauge reports value under name at every scrape, as a gauge: a value
// that goes up and down.
func (r *Registry) Gauge(name, help string, value func() float64) {
	r.add(gauge{name: name, help: help, kind: "gauge", value: value})
}

// Counter reports value under name at every scrape, as a counter: a
// total that only grows (until the process restarts).
func (r *Registry) Counter(name, help string, value func() float64) {
	r.add(gauge{name: name, help: help, kind: "counter", value: value})
}

// LabelledGauge reports the samples under name at every scrape, as a
// gauge with labels.
func (r *Registry) LabelledGauge(name, help string, samples func() []Sample) {
	r.add(gauge{name: name, help: help, kind: "gauge", samples: samples})
}

func (r *Registry) add(g gauge) {
	r.mu.Lock()
	r.gauges = append(r.gauges, g)
	r.mu.Unlock()
}

// Observe counts one answered request.
func (s *Site) Observe(code int, bytes int64, d time.Duration) {
	if code == 0 {
		code = http.StatusOK
	}
	if code >= 100 && code < 600 {
		s.codes[code].Add(1)
	}
	s.bytes.Add(bytes)
	s.sumNanos.Add(int64(d))
	sec := d.Seconds()
	i, _ := slices.BinarySearch(durationBuckets, sec)
	s.buckets[i].Add(1)
}

// ServeHTTP writes every metric in the Prometheus text format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	r.write(w)
}

// write writes every metric in the Prometheus text format.
func (r *Registry) write(w io.Writer) {
	r.mu.Lock()
	sites := make([]*Site, 0, len(r.sites))
	for _, s := range r.sites {
		sites = append(sites, s)
	}
	gauges := slices.Clone(r.gauges)
	r.mu.Unlock()
	slices.SortFunc(sites, func(a, b *Site) int { return strings.Compare(a.name, b.name) })

	var b strings.Builder
	b.WriteString("# HELP appliance_requests_total Requests answered, by site and status code.\n# TYPE appliance_requests_total counter\n")
	for _, s := range sites {
		for code := range s.codes {
			if n := s.codes[code].Load(); n > 0 {
				fmt.Fprintf(&b, "appliance_requests_total{site=%s,code=\"%d\"} %d\n", quote(s.name), code, n)
			}
		}
	}
	b.WriteString("# HELP appliance_response_bytes_total Body bytes sent, by site.\n# TYPE appliance_response_bytes_total counter\n")
	for _, s := range sites {
		fmt.Fprintf(&b, "appliance_response_bytes_total{site=%s} %d\n", quote(s.name), s.bytes.Load())
	}
	b.WriteString("# HELP appliance_request_duration_seconds Time to answer a request, by site.\n# TYPE appliance_request_duration_seconds histogram\n")
	for _, s := range sites {
		var cum int64
		site := quote(s.name)
		for i, le := range durationBuckets {
			cum += s.buckets[i].Load()
			fmt.Fprintf(&b, "appliance_request_duration_seconds_bucket{site=%s,le=\"%s\"} %d\n", site, strconv.FormatFloat(le, 'g', -1, 64), cum)
		}
		cum += s.buckets[len(durationBuckets)].Load()
		fmt.Fprintf(&b, "appliance_request_duration_seconds_bucket{site=%s,le=\"+Inf\"} %d\n", site, cum)
		fmt.Fprintf(&b, "appliance_request_duration_seconds_sum{site=%s} %g\n", site, float64(s.sumNanos.Load())/1e9)
		fmt.Fprintf(&b, "appliance_request_duration_seconds_count{site=%s} %d\n", site, cum)
	}
	for _, g := range gauges {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", g.name, helpEscaper.Replace(g.help), g.name, g.kind)
		if g.samples == nil {
			fmt.Fprintf(&b, "%s %g\n", g.name, g.value())
			continue
		}
		for _, smp := range g.samples() {
			b.WriteString(g.name)
			for i := 0; i+1 < len(smp.Labels); i += 2 {
				sep := ","
				if i == 0 {
					sep = "{"
				}
				fmt.Fprintf(&b, "%s%s=%s", sep, smp.Labels[i], quote(smp.Labels[i+1]))
			}
			if len(smp.Labels) >= 2 {
				b.WriteByte('}')
			}
			fmt.Fprintf(&b, " %s\n", strconv.FormatFloat(smp.Value, 'f', -1, 64))
		}
	}
	io.WriteString(w, b.String())
}

// The text format escapes only these in label values (and, less the
// double quote, in HELP text); every other character is written as it
// is, in UTF-8. Go's %q is not this format: its \t, \x01 or \u2028 are
// errors to Prometheus, which then rejects the whole scrape.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// quote writes v as a label value of the text format, in double quotes.
// The format is UTF-8 and has no escape for other bytes: invalid
// sequences become U+FFFD.
func quote(v string) string {
	return `"` + labelEscaper.Replace(strings.ToValidUTF8(v, "\uFFFD")) + `"`
}
