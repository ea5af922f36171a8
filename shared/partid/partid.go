// Package partid is the wire form of a catalog part id, the same in every API
// of Car Build (canonical and seed-compatible): a positive int64 written in
// decimal, at most 19 digits.
package partid

import (
	"strconv"

	"github.com/carbuild/carbuild/shared/errs"
)

// maxLen is the digits of the largest int64: a longer id could only be
// zero-padded, and is refused before any work is spent on it.
const maxLen = 19

// Parse parses a part id; anything but 1-19 decimal digits (an optional
// sign, as strconv takes it) of a positive number is an
// errs.InvalidArgument that quotes the id, cut short.
func Parse(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || len(s) > maxLen {
		return 0, errs.New(errs.InvalidArgument, "part id %q must be a positive decimal number", errs.Truncate(s))
	}
	return n, nil
}

// Format writes a part id.
func Format(id int64) string { return strconv.FormatInt(id, 10) }

// Append appends the part id as Format writes it.
func Append(b []byte, id int64) []byte { return strconv.AppendInt(b, id, 10) }
