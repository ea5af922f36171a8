package fault

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

// TestRateLimitBySubject checks, on a stack with per-client rate limits,
// that the gateway limits a verified subject, not its address: two
// customers behind one address keep separate buckets, one customer calling
// from two addresses has one; anonymous callers are limited by address; and
// forged tokens are limited by address too, answered 429 before they are
// verified once the address's budget is spent.
//
// The bucket refills at 1 request/s; burst is what the test counts against.
// Separate buckets would admit every one of 2×burst requests, whatever the
// timing; a shared bucket refuses some unless the machine takes longer than
// burst seconds to send them.
func TestRateLimitBySubject(t *testing.T) {
	const burst = 20
	s := startStack(t, stack.Config{Env: []string{"GATEWAY_RATE_LIMIT=1", "GATEWAY_RATE_BURST=20"}})
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	token := func(c devissuer.Claims) string {
		tok, err := s.Issuer.Token(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	get := func(c *http.Client, tok string) int {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", s.GatewayURL+"/v1/cars", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return resp.StatusCode
	}
	// untilRefused sends until the first 429 and returns the answers before it.
	untilRefused := func(c *http.Client, tok string) map[int]int {
		t.Helper()
		seen := map[int]int{}
		for range 10 * burst {
			code := get(c, tok)
			if code == http.StatusTooManyRequests {
				return seen
			}
			seen[code]++
		}
		t.Fatalf("no 429 after %d requests at 1/s with burst %d", 10*burst, burst)
		return nil
	}
	a, b := from("127.0.0.1"), from("127.0.0.2")

	t.Run("two subjects, one address", func(t *testing.T) {
		alice, bob := token(devissuer.Claims{Subject: "rl-alice"}), token(devissuer.Claims{Subject: "rl-bob"})
		if got := untilRefused(a, alice); got[http.StatusOK] < burst {
			t.Errorf("alice admitted %v before her first 429, want >= %d OK", got, burst)
		}
		if code := get(a, bob); code != http.StatusOK {
			t.Errorf("bob from alice's address: %d, want 200 (his own bucket)", code)
		}
		if code := get(a, ""); code != http.StatusOK {
			t.Errorf("anonymous from alice's address: %d, want 200 (the address's bucket)", code)
		}
	})

	t.Run("one subject, two addresses", func(t *testing.T) {
		carol := token(devissuer.Claims{Subject: "rl-carol"})
		refused := 0
		for i := range 2 * burst {
			c := a
			if i%2 == 1 {
				c = b
			}
			if get(c, carol) == http.StatusTooManyRequests {
				refused++
			}
		}
		if refused == 0 {
			t.Errorf("carol sent %d requests from two addresses with a burst of %d and none was refused: one bucket per address?", 2*burst, burst)
		}
	})

	t.Run("forged tokens, by address", func(t *testing.T) {
		forged := token(devissuer.Claims{Subject: "rl-mallory", Forged: true})
		c := from("127.0.0.3")
		if got := untilRefused(c, forged); got[http.StatusUnauthorized] < burst || len(got) != 1 {
			t.Errorf("forged tokens before the first 429: %v, want >= %d 401s only", got, burst)
		}
		if code := get(b, forged); code != http.StatusUnauthorized {
			t.Errorf("a forged token from another address: %d, want 401 (verified, its own budget)", code)
		}
		if code := get(from("127.0.0.4"), token(devissuer.Claims{Subject: "rl-mallory"})); code != http.StatusOK {
			t.Errorf("the subject of the forged tokens, validly signed, from elsewhere: %d, want 200", code)
		}
	})
}
