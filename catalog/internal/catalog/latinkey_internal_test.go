package catalog

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// TestLatinKeysAgreeWithTheCollator compares latinKeys' keys with the
// collator on random pairs of names: their order must be the collator's
// for every pair. The names are drawn to tie as often as possible on the
// first levels (shared prefixes, the same letters with other accents or
// case), where a wrong secondary or tertiary rule would show.
func TestLatinKeysAgreeWithTheCollator(t *testing.T) {
	t.Parallel()
	k := newLatinKeys()
	col := collate.New(language.English)
	runes := []rune(latinRunes)
	// Variants of one base letter: every accent and case the table has.
	variants := map[rune][]rune{}
	for _, r := range runes {
		b := k.primary[r]
		variants[rune(b)] = append(variants[rune(b)], r)
	}
	r := rand.New(rand.NewPCG(7, 11))
	randName := func() string {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteRune(runes[r.IntN(len(runes))])
		}
		return b.String()
	}
	// twin changes some letters of s to another variant of the same base.
	twin := func(s string) string {
		out := []rune(s)
		for i, c := range out {
			if r.IntN(3) == 0 {
				v := variants[rune(k.primary[c])]
				out[i] = v[r.IntN(len(v))]
			}
		}
		return string(out)
	}
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	var ka, kb []byte
	for i := range n {
		a := randName()
		var b string
		switch i % 4 {
		case 0:
			b = randName()
		case 1:
			b = twin(a)
		case 2:
			b = a + randName()
		case 3:
			b = twin(a) + randName()
		}
		var okA, okB bool
		ka, okA = k.appendKey(ka[:0], a)
		kb, okB = k.appendKey(kb[:0], b)
		if !okA || !okB {
			t.Fatalf("a covered name was refused: %q %v, %q %v", a, okA, b, okB)
		}
		if got, want := bytes.Compare(ka, kb), col.CompareString(a, b); got != want {
			t.Fatalf("%q vs %q: keys compare %d, the collator %d (keys %v, %v)", a, b, got, want, ka, kb)
		}
	}
}

func TestLatinKeysRefuseOtherCharacters(t *testing.T) {
	t.Parallel()
	k := newLatinKeys()
	for _, name := range []string{"Straße", "Æther", "Ørsted", "€ 10", "日本", "Tab\there", "bad \xff", "Œil", "İ"} {
		b := []byte("kept")
		got, ok := k.appendKey(b, name)
		if ok || string(got) != "kept" {
			t.Errorf("appendKey(%q) = %q, %v; want it refused and the buffer unchanged", name, got, ok)
		}
	}
	if _, ok := k.appendKey(nil, "Sistema Híbrido gen-05001 #2, Capô (LED) 2.0"); !ok {
		t.Error("a generated part's name was refused")
	}
}
