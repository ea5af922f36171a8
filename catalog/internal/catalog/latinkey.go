package catalog

import (
	"slices"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

// latinKeys builds collation keys for names written only in the letters,
// digits and punctuation of Portuguese (ASCII and Latin-1's accented
// letters): the names of nearly every part. They order names exactly as
// the collator's keys do (TestLatinKeysAgreeWithTheCollator checks it on
// random names), at a fraction of the cost: a name's key is three bytes per
// letter looked up in a table, where the collator walks its tries for ~1.3
// µs a name.
//
// Why three levels per letter suffice: in the root collation each of these
// characters is one collation element (a base letter, digit or mark) or,
// when accented, the base letter's element followed by a mark's element that
// has no primary weight. A key compares every primary weight first, then
// every secondary, then every tertiary. Names that tie on primaries have the
// same base letters in the same places, so the first secondary difference
// is at the first letter whose accents differ; there the unaccented letter
// (the lowest, "common" weight) sorts first, and two accents compare by the
// mark's weight: one secondary byte per letter — 0 unaccented, else the
// mark's rank — compares the same. Case, the tertiary level, is then one
// byte per letter too.
type latinKeys struct {
	// primary, secondary and tertiary are each rune's weights; primary 0
	// marks a rune the table does not cover.
	primary, secondary, tertiary [0x100]byte
}

// latinRunes are the characters latinKeys covers: what part names are
// written with. Others (ß and æ expand to two letters, ø is a letter of its
// own, symbols) leave the car to the collator.
const latinRunes = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~" +
	"ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ"

// newLatinKeys ranks latinRunes by the collator itself, so the table
// follows whatever version of the root collation x/text carries.
func newLatinKeys() *latinKeys {
	var k latinKeys
	runes := []rune(latinRunes)
	// Primary: base letters, digits and punctuation in collation order,
	// case and accents ignored (equal runes share a rank).
	base := collate.New(language.English, collate.IgnoreCase, collate.IgnoreDiacritics)
	names := make([]string, len(runes))
	for i, r := range runes {
		names[i] = string(r)
	}
	rank(names, base, func(s string, n int) { k.primary[[]rune(s)[0]] = byte(n + 1) })
	// Secondary: the rank of the rune's accent (its combining mark after
	// canonical decomposition), 0 for none.
	var marks []rune
	markOf := map[rune]rune{}
	for _, r := range runes {
		d := []rune(norm.NFD.String(string(r)))
		if len(d) == 2 && unicode.Is(unicode.Mn, d[1]) {
			markOf[r] = d[1]
			if !slices.Contains(marks, d[1]) {
				marks = append(marks, d[1])
			}
		}
	}
	// Each mark after the same letter, decomposed ("a" + U+0301): the
	// collator reads the pair as the accented letter.
	accents := collate.New(language.English, collate.IgnoreCase)
	marked := make([]string, len(marks))
	for i, m := range marks {
		marked[i] = "a" + string(m)
	}
	markRank := map[rune]int{}
	rank(marked, accents, func(s string, n int) { markRank[[]rune(s)[1]] = n + 1 })
	for r, m := range markOf {
		k.secondary[r] = byte(markRank[m])
	}
	// Tertiary: upper case after lower case (or before, if the collator
	// says so), everything else as lower case.
	full := collate.New(language.English)
	upper, lower := byte(1), byte(0)
	if full.CompareString("A", "a") < 0 {
		upper, lower = 0, 1
	}
	for _, r := range runes {
		if unicode.IsUpper(r) {
			k.tertiary[r] = upper
		} else {
			k.tertiary[r] = lower
		}
	}
	return &k
}

// rank sorts strs by col and calls set with each one's rank, equal ones
// sharing a rank.
func rank(strs []string, col *collate.Collator, set func(s string, n int)) {
	sorted := slices.Clone(strs)
	slices.SortStableFunc(sorted, col.CompareString)
	n := 0
	for i, s := range sorted {
		if i > 0 && col.CompareString(sorted[i-1], s) != 0 {
			n++
		}
		set(s, n)
	}
}

// appendKey appends name's key to b: every primary byte, a 0, every
// secondary byte, a 0, every tertiary byte. ok is false when a rune of name
// is not covered (b is then unchanged).
func (k *latinKeys) appendKey(b []byte, name string) ([]byte, bool) {
	start := len(b)
	n := 0
	for i := 0; i < len(name); {
		r, size := rune(name[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(name[i:])
		}
		if r >= 0x100 || k.primary[r] == 0 {
			return b[:start], false
		}
		b = append(b, k.primary[r])
		i += size
		n++
	}
	b = append(b, 0)
	for _, r := range name {
		b = append(b, k.secondary[r])
	}
	b = append(b, 0)
	for _, r := range name {
		b = append(b, k.tertiary[r])
	}
	return b, true
}
