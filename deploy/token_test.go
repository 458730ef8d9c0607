package deploy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"appliance/rewrite"
)

// tokenIs is an Authorized that takes the bearer token good, counting
// its calls in n.
func tokenIs(good string, n *int) func(*http.Request) error {
	return func(r *http.Request) error {
		if n != nil {
			*n++
		}
		if r.Header.Get("Authorization") != "Bearer "+good {
			return errors.New("wrong token")
		}
		return nil
	}
}

// TestTokenLockout: an address that keeps sending wrong deploy tokens is
// locked out (429 with Retry-After, the token unchecked), as Basic auth
// locks one out; another address still deploys.
func TestTokenLockout(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{})
	hash, _ := bcrypt.GenerateFromPassword([]byte("good"), bcrypt.MinCost)
	secret, err := rewrite.NewSecret(string(hash))
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Store: s, Authorized: secret.CheckBearer}
	get := func(remote, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", Prefix+"releases", nil)
		r.RemoteAddr = remote
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 6 { // five free failures, and the one that locks
		if w := get("127.0.0.1:1", "bad"); w.Code != 401 {
			t.Fatalf("wrong token %d: %d", i+1, w.Code)
		}
	}
	w := get("127.0.0.1:1", "good")
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("locked out: %d Retry-After %q: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := get("127.0.0.2:1", "good"); w.Code != 200 {
		t.Errorf("another address: %d %s", w.Code, w.Body)
	}
}

// readSpy is a request body that counts its reads.
type readSpy struct{ reads int }

func (b *readSpy) Read(p []byte) (int, error) {
	b.reads++
	return copy(p, "x"), nil
}

// TestAuthBeforeBody: a request without the right token is answered 401
// before a byte of its body is read, whatever the operation.
func TestAuthBeforeBody(t *testing.T) {
	s, _ := Open(t.TempDir(), Limits{})
	h := &Handler{Store: s, Authorized: tokenIs("good", nil)}
	for _, op := range []string{"POST manifest", "PUT blobs/" + sum("x"), "POST releases", "POST rollback"} {
		method, path, _ := strings.Cut(op, " ")
		for _, auth := range []string{"", "Bearer bad", "Basic Z29vZDpnb29k"} {
			body := &readSpy{}
			r := httptest.NewRequest(method, Prefix+path, body)
			r.RemoteAddr = "127.0.0.1:1"
			r.ContentLength = 1 << 30
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized || body.reads != 0 {
				t.Errorf("%s with %q: %d, %d reads of the body, want 401 and none", op, auth, w.Code, body.reads)
			}
		}
	}
}
