package metrics

import (
	"strings"
	"testing"
	"time"
)

func TestExposition(t *testing.T) {
	r := New()
	s := r.Site("example.test")
	s.Observe(200, 100, 300*time.Microsecond)
	s.Observe(200, 50, 2*time.Millisecond)
	s.Observe(404, 10, 20*time.Second)
	r.Site("example.test").Observe(304, 0, time.Millisecond) // same counters after a reload
	r.Gauge("appliance_cache_bytes", "Bytes.", "gauge", func() float64 { return 42 })
	r.Labelled("appliance_certificate_expiry_timestamp_seconds", "Expiry.", "gauge", func() []Sample {
		return []Sample{{Labels: []string{"name", "a.test", "source", "acme"}, Value: 1800000000}, {Labels: []string{"name", `q"`}, Value: 0}}
	})
	var b strings.Builder
	r.Write(&b)
	out := b.String()
	for _, want := range []string{
		`appliance_requests_total{site="example.test",code="200"} 2`,
		`appliance_requests_total{site="example.test",code="304"} 1`,
		`appliance_requests_total{site="example.test",code="404"} 1`,
		`appliance_response_bytes_total{site="example.test"} 160`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="0.0005"} 1`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="0.001"} 2`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="0.0025"} 3`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="10"} 3`,
		`appliance_request_duration_seconds_bucket{site="example.test",le="+Inf"} 4`,
		`appliance_request_duration_seconds_count{site="example.test"} 4`,
		"# TYPE appliance_cache_bytes gauge\nappliance_cache_bytes 42\n",
		"# TYPE appliance_certificate_expiry_timestamp_seconds gauge\n" +
			"appliance_certificate_expiry_timestamp_seconds{name=\"a.test\",source=\"acme\"} 1800000000\n" +
			"appliance_certificate_expiry_timestamp_seconds{name=\"q\\\"\"} 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
