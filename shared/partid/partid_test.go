package partid_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/carbuild/carbuild/shared/errs"
	"github.com/carbuild/carbuild/shared/partid"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantMsg string
	}{
		{in: "1", want: 1},
		{in: "9223372036854775807", want: 9223372036854775807},
		{in: "007", want: 7},
		{in: "+5", want: 5},
		{in: "0", wantMsg: `part id "0" must be a positive decimal number`},
		{in: "-3", wantMsg: `part id "-3" must be a positive decimal number`},
		{in: "", wantMsg: `part id "" must be a positive decimal number`},
		{in: " 1", wantMsg: `part id " 1" must be a positive decimal number`},
		{in: "1.0", wantMsg: `part id "1.0" must be a positive decimal number`},
		{in: "9223372036854775808", wantMsg: `part id "9223372036854775808" must be a positive decimal number`},
		{in: "00000000000000000001", wantMsg: `part id "00000000000000000001" must be a positive decimal number`},
		{in: "abcdefghijklmnopqrstuvwxyz0123456789", wantMsg: `part id "abcdefghijklmnopqrstuvwxyz012345…" must be a positive decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := partid.Parse(tt.in)
			if tt.wantMsg == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Parse(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
				}
				if back, _ := partid.Parse(partid.Format(got)); back != got {
					t.Errorf("Parse(Format(%d)) = %d", got, back)
				}
				return
			}
			if !errors.Is(err, errs.InvalidArgument) || errs.Status(err).Message() != tt.wantMsg {
				t.Errorf("Parse(%q) error = %v, want InvalidArgument %q", tt.in, err, tt.wantMsg)
			}
		})
	}
}

// FuzzParse: any string is a positive id or an errs.InvalidArgument whose
// message stays short (the input is truncated); never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "20", "0", "-1", "+7", "007", " 7", "7 ", "9223372036854775807", "9223372036854775808",
		"1e3", "0x10", "", "١٢", "7; DROP TABLE catalog.parts; --", strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := partid.Parse(s)
		if err != nil {
			if !errors.Is(err, errs.InvalidArgument) {
				t.Fatalf("partid.Parse(%q): %v is not an InvalidArgument", s, err)
			}
			if len(err.Error()) > 250 { // 32 bytes of input, each at most \xNN quoted
				t.Fatalf("partid.Parse(%q): message of %d bytes echoes the input", s, len(err.Error()))
			}
			return
		}
		if n <= 0 {
			t.Fatalf("partid.Parse(%q) = %d", s, n)
		}
		// Accepted ids are decimal digits, at most one leading '+'.
		digits := strings.TrimPrefix(s, "+")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("partid.Parse accepted %q", s)
		}
		if m, _ := strconv.ParseInt(digits, 10, 64); m != n {
			t.Fatalf("partid.Parse(%q) = %d, want %d", s, n, m)
		}
	})
}
