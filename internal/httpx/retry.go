package httpx

import (
	"strconv"
	"time"
)

// RetryAfter is the value of a Retry-After header (RFC 9110 10.2.3)
// asking the client to wait d: whole seconds, rounded up, at least one
// (a zero would invite an immediate retry).
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}
