package httpx

import "net/http"

// DefaultRedirectCacheControl lets browsers and shared caches keep a
// permanent redirect for an hour: the round trip is saved on every
// visit after the first, and a mistaken rule is forgotten the same day.
const DefaultRedirectCacheControl = "max-age=3600"

// Permanent returns the Cache-Control of permanent redirects that a
// site configures: cacheControl, or DefaultRedirectCacheControl when
// that is "".
func Permanent(cacheControl string) []string {
	if cacheControl == "" {
		cacheControl = DefaultRedirectCacheControl
	}
	return []string{cacheControl}
}

// noStore is the Cache-Control of temporary redirects.
var noStore = []string{"no-store"}

// RedirectCacheControl returns the Cache-Control of a redirect with
// status. Permanent ones (301, 308) are cacheable (RFC 9110 sections
// 15.4.2 and 15.4.9), for the lifetime permanent states (from Permanent). Temporary ones
// (302, 303, 307) may change at any time and, like every redirect here,
// carry no validator: "no-cache" would let a cache store one only to
// fetch it again on every use, so they are "no-store".
func RedirectCacheControl(status int, permanent []string) []string {
	if status == http.StatusMovedPermanently || status == http.StatusPermanentRedirect {
		return permanent
	}
	return noStore
}
