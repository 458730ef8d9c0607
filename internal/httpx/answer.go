package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// RetryAfter is the value of a Retry-After header (RFC 9110 10.2.3)
// asking the client to wait d: whole seconds, rounded up, at least one
// (a zero would invite an immediate retry).
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// WriteJSON answers status with v as JSON, not to be sniffed as
// anything else.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
