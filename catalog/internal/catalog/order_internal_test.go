package catalog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
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
			if diff := cmp.Diff(tt.want, got); diff != "" {
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
