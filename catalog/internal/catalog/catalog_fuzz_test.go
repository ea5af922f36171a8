package catalog

import (
	"errors"
	"strings"
	"testing"

	"github.com/carbuild/carbuild/shared/errs"
)

// FuzzPageToken: a page token from a client decodes to a positive part id
// for the car it was issued for, or is refused with errs.InvalidArgument; tokens this
// service issues round-trip.
func FuzzPageToken(f *testing.F) {
	f.Add(encodePageToken("civic", 9), "civic")
	f.Add(encodePageToken("civic", 9), "fusca")
	f.Add("", "civic")
	f.Add("not base64!", "civic")
	f.Add("Y2l2aWM6LTE", "civic") // civic:-1
	f.Add("Y2l2aWM6", "civic")    // civic:
	f.Add("OjE", "")              // :1
	f.Fuzz(func(t *testing.T, token, car string) {
		n, err := decodePageToken(token, car)
		switch {
		case err != nil && !errors.Is(err, errs.InvalidArgument):
			t.Fatalf("decodePageToken(%q, %q): %v does not wrap errs.InvalidArgument", token, car, err)
		case err == nil && token == "" && n != 0:
			t.Fatalf("empty token decoded to %d", n)
		case err == nil && token != "" && n <= 0:
			t.Fatalf("decodePageToken(%q, %q) = %d", token, car, n)
		}
		if err == nil && n > 0 {
			again, err := decodePageToken(encodePageToken(car, n), car)
			if err != nil || again != n {
				t.Fatalf("token for (%q, %d) decodes to %d, %v", car, n, again, err)
			}
		}
	})
}

// FuzzCarKey: model names of any content and case are trimmed and bounded,
// or refused with errs.InvalidArgument.
func FuzzCarKey(f *testing.F) {
	for _, s := range []string{"Civic", "CIVIC", " civic ", "cívic", "Çivic", "' OR 1=1 --", "civic\x00", "civic\n", "", "   ", strings.Repeat("a", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := carKey(s)
		if err != nil {
			if !errors.Is(err, errs.InvalidArgument) {
				t.Fatalf("carKey(%q): %v", s, err)
			}
			return
		}
		if k == "" || len(k) > MaxKeyLength || k != strings.TrimSpace(k) || strings.ContainsRune(k, 0) {
			t.Fatalf("carKey(%q) = %q", s, k)
		}
	})
}
