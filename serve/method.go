package serve

import "net/http"

// knownMethod reports whether m is a method HTTP defines (RFC 9110
// section 9.3, and PATCH, RFC 5789). A static site refuses those it does
// not allow with 405 and Allow; any other method is not implemented for
// any resource, 501 (RFC 9110 section 9.1). Methods are case-sensitive:
// "get" is not GET, and is unknown.
func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return true
	}
	return false
}
