package catalog

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// TestNameOrder pins how the seed-compatible GetPecas orders names: the
// earlier system's PostgreSQL (en_US.UTF-8) order, not byte order.
func TestNameOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		parts []Part // in id order
		want  []int64
	}{
		{
			name: "accent does not push a name past longer ones",
			// Byte order would give Capo, Capoeira, Capô (ô is 0xC3 0xB4).
			parts: []Part{{ID: 1, Name: "Capoeira"}, {ID: 2, Name: "Capô"}, {ID: 3, Name: "Capo"}},
			want:  []int64{3, 2, 1},
		},
		{
			name: "case is not a first-level difference",
			// Byte order would put every upper-case name first.
			parts: []Part{{ID: 1, Name: "Zebra"}, {ID: 2, Name: "amortecedor"}, {ID: 3, Name: "Banco"}},
			want:  []int64{2, 3, 1},
		},
		{
			name:  "lower case before upper case when letters and accents tie",
			parts: []Part{{ID: 1, Name: "CAPÔ"}, {ID: 2, Name: "Capô"}, {ID: 3, Name: "capô"}},
			want:  []int64{3, 2, 1},
		},
		{
			name:  "a space sorts before any letter",
			parts: []Part{{ID: 1, Name: "Capota"}, {ID: 2, Name: "Capô Esportivo"}},
			want:  []int64{2, 1},
		},
		{
			name:  "equal names keep id order",
			parts: []Part{{ID: 9, Name: "Chassi"}, {ID: 4, Name: "Chassi"}, {ID: 7, Name: "Capô"}},
			want:  []int64{7, 4, 9},
		},
		{
			name: "the civic seed",
			parts: []Part{
				{ID: 7, Name: "Chassi"}, {ID: 8, Name: "Motor 2.0 VTEC"}, {ID: 9, Name: "Rodas Aro 16"}, {ID: 10, Name: "Farol LED"},
				{ID: 11, Name: "Parachoque Esportivo"}, {ID: 12, Name: "Capô Esportivo"}, {ID: 13, Name: "Spoiler"},
			},
			want: []int64{12, 7, 10, 8, 11, 9, 13},
		},
		{name: "empty", parts: nil, want: nil},
	}
	o := newNameOrder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parts := append([]Part(nil), tt.parts...)
			o.sort(parts)
			var got []int64
			for _, p := range parts {
				got = append(got, p.ID)
			}
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids after sort (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkNameOrder is the cost the seed-compatible order adds to a
// GetPecas answered from the catalog's cache (a car of the seed's size).
func BenchmarkNameOrder(b *testing.B) {
	seed := []Part{
		{ID: 7, Name: "Chassi"}, {ID: 8, Name: "Motor 2.0 VTEC"}, {ID: 9, Name: "Rodas Aro 16"}, {ID: 10, Name: "Farol LED"},
		{ID: 11, Name: "Parachoque Esportivo"}, {ID: 12, Name: "Capô Esportivo"}, {ID: 13, Name: "Spoiler"},
	}
	o := newNameOrder()
	parts := make([]Part, len(seed))
	b.ReportAllocs()
	for b.Loop() {
		copy(parts, seed)
		o.sort(parts)
	}
}

// TestNameOrderKeysAgreeWithTheCollator checks the sort by collation keys
// against the collator's own comparison on names of every kind the
// catalog holds (accents, case, digits, punctuation, shared prefixes).
func TestNameOrderKeysAgreeWithTheCollator(t *testing.T) {
	t.Parallel()
	parts := benchParts()
	parts = append(parts, Part{ID: 1000, Name: "Capô"}, Part{ID: 1001, Name: "CAPO"}, Part{ID: 1002, Name: "capo-2"},
		Part{ID: 1003, Name: "Capo 2"}, Part{ID: 1004, Name: "Sistema Híbrido"}, Part{ID: 1005, Name: "Sistema Hibrido"},
		Part{ID: 1006, Name: "Farol LED"}, Part{ID: 1007, Name: "Farol led"}, Part{ID: 1008, Name: "Farol #10"}, Part{ID: 1009, Name: "Farol #9"})
	col := collate.New(language.English)
	o := newNameOrder()
	// Latin-1 names only (the table's keys), then with one name the table
	// does not cover (the collator's keys for the whole car).
	for _, parts := range [][]Part{parts, append(slices.Clone(parts), Part{ID: 1010, Name: "Œil de bœuf"}, Part{ID: 1011, Name: "Straße 2"})} {
		got := slices.Clone(parts)
		o.sort(got)
		want := slices.Clone(parts)
		slices.SortStableFunc(want, func(a, b Part) int {
			if c := col.CompareString(a.Name, b.Name); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("sort by keys differs from the collator (-collator +keys):\n%s", diff)
		}
	}
}

// benchParts are 100 parts named as gencatalog names a generated car's.
func benchParts() []Part {
	cats := []string{"Chassi", "Motor", "Rodas", "Farol", "Parachoque", "Capô", "Spoiler", "Sistema Híbrido"}
	parts := make([]Part, 100)
	for i := range parts {
		c := cats[0]
		if i > 0 {
			c = cats[1+(i-1)%(len(cats)-1)]
		}
		parts[i] = Part{ID: int64(21 + i), Name: fmt.Sprintf("%s gen-05001 #%d", c, i+1)}
	}
	return parts
}

// BenchmarkNameOrderByKeys compares the service's sort (by collation keys
// above keyedSort parts) with the collator comparing names on every
// comparison (what it did for every car before) on a seed car (7 parts) and
// a generated car (100 parts, POST /get-pecas of the big catalog).
func BenchmarkNameOrderByKeys(b *testing.B) {
	seed := []Part{
		{ID: 7, Name: "Chassi"}, {ID: 8, Name: "Motor 2.0 VTEC"}, {ID: 9, Name: "Rodas Aro 16"}, {ID: 10, Name: "Farol LED"},
		{ID: 11, Name: "Parachoque Esportivo"}, {ID: 12, Name: "Capô Esportivo"}, {ID: 13, Name: "Spoiler"},
	}
	for _, car := range []struct {
		name  string
		parts []Part
	}{{"seed-7", seed}, {"generated-100", benchParts()}} {
		b.Run(car.name+"/service", func(b *testing.B) {
			o := newNameOrder()
			buf := make([]Part, len(car.parts))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, car.parts)
				o.sort(buf)
			}
		})
		b.Run(car.name+"/collator", func(b *testing.B) {
			col := collate.New(language.English)
			buf := make([]Part, len(car.parts))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, car.parts)
				slices.SortFunc(buf, func(a, b Part) int {
					if c := col.CompareString(a.Name, b.Name); c != 0 {
						return c
					}
					return cmp.Compare(a.ID, b.ID)
				})
			}
		})
	}
}
