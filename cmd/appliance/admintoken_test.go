package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"appliance/rewrite"
)

// TestAdminTokenLockout: an address that keeps sending wrong admin
// tokens is locked out of the admin listener (429 with Retry-After),
// even with the right token; another address is not.
func TestAdminTokenLockout(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("good"), bcrypt.MinCost)
	secret, err := rewrite.NewSecret(string(hash))
	if err != nil {
		t.Fatal(err)
	}
	h := bearer(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	get := func(remote, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = remote
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 6 { // five free failures, and the one that locks
		if w := get("192.0.2.1:1", "bad"); w.Code != 401 {
			t.Fatalf("wrong token %d: %d", i+1, w.Code)
		}
	}
	if w := get("192.0.2.1:1", "good"); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("locked out: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get("192.0.2.2:1", "good"); w.Code != 200 {
		t.Errorf("another address: %d", w.Code)
	}
}
