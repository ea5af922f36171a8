package catalog

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzParsePartID: any string is a positive id or an ErrInvalid whose
// message stays short (the input is truncated); never a panic.
func FuzzParsePartID(f *testing.F) {
	for _, s := range []string{"1", "20", "0", "-1", "+7", "007", " 7", "7 ", "9223372036854775807", "9223372036854775808",
		"1e3", "0x10", "", "١٢", "7; DROP TABLE catalog.parts; --", strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParsePartID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParsePartID(%q): %v does not wrap ErrInvalid", s, err)
			}
			if len(err.Error()) > 250 { // 32 bytes of input, each at most \xNN quoted
				t.Fatalf("ParsePartID(%q): message of %d bytes echoes the input", s, len(err.Error()))
			}
			return
		}
		if n <= 0 {
			t.Fatalf("ParsePartID(%q) = %d", s, n)
		}
		// Accepted ids are decimal digits, at most one leading '+'.
		digits := strings.TrimPrefix(s, "+")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("ParsePartID accepted %q", s)
		}
		if m, _ := strconv.ParseInt(digits, 10, 64); m != n {
			t.Fatalf("ParsePartID(%q) = %d, want %d", s, n, m)
		}
	})
}

// FuzzPageToken: a page token from a client decodes to a positive part id
// for the car it was issued for, or is refused with ErrInvalid; tokens this
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
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Fatalf("decodePageToken(%q, %q): %v does not wrap ErrInvalid", token, car, err)
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
// or refused with ErrInvalid.
func FuzzCarKey(f *testing.F) {
	for _, s := range []string{"Civic", "CIVIC", " civic ", "cívic", "Çivic", "' OR 1=1 --", "civic\x00", "civic\n", "", "   ", strings.Repeat("a", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := carKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("carKey(%q): %v", s, err)
			}
			return
		}
		if k == "" || len(k) > MaxKeyLength || k != strings.TrimSpace(k) || strings.ContainsRune(k, 0) {
			t.Fatalf("carKey(%q) = %q", s, k)
		}
	})
}
