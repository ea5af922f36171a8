package quote

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carbuild/carbuild/shared/errs"
)

// Seed parts (docs/architecture.md), prices in centavos.
var seed = map[int64]Part{
	1:  {ID: 1, Name: "Chassi", Category: CategoryChassis, UnitPrice: 500000, Currency: "BRL"},
	3:  {ID: 3, Name: "Rodas Aro 14", UnitPrice: 80000, Currency: "BRL"},
	4:  {ID: 4, Name: "Farol Dianteiro", UnitPrice: 15000, Currency: "BRL"},
	5:  {ID: 5, Name: "Parachoque Traseiro", UnitPrice: 20000, Currency: "BRL"},
	7:  {ID: 7, Name: "Chassi", Category: CategoryChassis, UnitPrice: 800000, Currency: "BRL"},
	8:  {ID: 8, Name: "Motor 2.0 VTEC", UnitPrice: 650000, Currency: "BRL"},
	10: {ID: 10, Name: "Farol LED", UnitPrice: 35000, Currency: "BRL"},
	13: {ID: 13, Name: "Spoiler", UnitPrice: 30000, Currency: "BRL"},
	14: {ID: 14, Name: "Chassi", Category: CategoryChassis, UnitPrice: 750000, Currency: "BRL"},
	20: {ID: 20, Name: "Sistema Híbrido", UnitPrice: 200000, Currency: "BRL"},
	90: {ID: 90, Name: "Free sample", UnitPrice: 0, Currency: "BRL"},
	91: {ID: 91, Name: "Imported", UnitPrice: 100, Currency: "USD"},
	92: {ID: 92, Name: "Priceless", UnitPrice: 1 << 62, Currency: "BRL"},
	93: {ID: 93, Name: "Also priceless", UnitPrice: 1 << 62, Currency: "BRL"},
}

func TestShipping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		subtotal int64
		units    int64
		want     int64
		wantFree bool
	}{
		{"empty basket ships nothing", 0, 0, 0, false},
		{"one unit is raised to the floor", 15000, 1, 2000, false},
		{"two units 30 reais", 30000, 2, 3000, false},
		{"one unit of a free part still floors", 0, 1, 2000, false},
		{"exactly 10000 reais is not free", 1_000_000, 4, 6000, false},
		{"one centavo above 10000 is free", 1_000_001, 4, 0, true},
		{"far above is free", 5_000_000, 99, 0, true},
		{"many units below threshold", 999_999, 60, 90000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, free := Shipping(tt.subtotal, tt.units)
			if got != tt.want || free != tt.wantFree {
				t.Errorf("Shipping(%d, %d) = %d, %v; want %d, %v", tt.subtotal, tt.units, got, free, tt.want, tt.wantFree)
			}
		})
	}
}

func TestCompute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		items        []Item
		wantSubtotal int64
		wantShipping int64
		wantTotal    int64
		wantFree     bool
		wantErr      string
	}{
		{name: "earlier system example: one civic chassis", items: []Item{{7, 1}}, wantSubtotal: 800000, wantShipping: 2000, wantTotal: 802000},
		{name: "empty basket quotes zero", items: nil, wantSubtotal: 0, wantShipping: 0, wantTotal: 0},
		{name: "headlights x2", items: []Item{{4, 2}}, wantSubtotal: 30000, wantShipping: 3000, wantTotal: 33000},
		{name: "chassis and two LED headlights", items: []Item{{7, 1}, {10, 2}}, wantSubtotal: 870000, wantShipping: 4500, wantTotal: 874500},
		{name: "above 10000 ships free", items: []Item{{7, 1}, {8, 1}}, wantSubtotal: 1450000, wantShipping: 0, wantTotal: 1450000, wantFree: true},
		{name: "exactly 10000 pays shipping", items: []Item{{7, 1}, {20, 1}}, wantSubtotal: 1000000, wantShipping: 3000, wantTotal: 1003000},
		{name: "free part alone pays the floor", items: []Item{{90, 1}}, wantSubtotal: 0, wantShipping: 2000, wantTotal: 2000},
		{name: "four wheels", items: []Item{{3, 4}}, wantSubtotal: 320000, wantShipping: 6000, wantTotal: 326000},
		{name: "max quantity line", items: []Item{{13, 99}}, wantSubtotal: 2970000, wantShipping: 0, wantTotal: 2970000, wantFree: true},
		{name: "two chassis in one line", items: []Item{{7, 2}}, wantErr: "only one chassis per order, got 2"},
		{name: "chassis of two cars", items: []Item{{1, 1}, {14, 1}}, wantErr: "only one chassis per order, got 2"},
		{name: "unpriced part", items: []Item{{55, 1}}, wantErr: "part 55 is not priced"},
		{name: "mixed currencies", items: []Item{{4, 1}, {91, 1}}, wantErr: "cannot be ordered together"},
		{name: "overflowing line", items: []Item{{92, 2}}, wantErr: "line total of part 92"},
		{name: "overflowing subtotal", items: []Item{{92, 1}, {93, 1}}, wantErr: "subtotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items, err := Merge(tt.items)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			got, err := Compute(items, seed)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Compute error = %v, want errs.InvalidArgument containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			if got.Subtotal != tt.wantSubtotal || got.Shipping != tt.wantShipping || got.Total != tt.wantTotal || got.FreeShipping != tt.wantFree {
				t.Errorf("Compute = subtotal %d shipping %d total %d free %v; want %d %d %d %v",
					got.Subtotal, got.Shipping, got.Total, got.FreeShipping, tt.wantSubtotal, tt.wantShipping, tt.wantTotal, tt.wantFree)
			}
			if got.Total != got.Subtotal+got.Shipping {
				t.Errorf("total %d != subtotal %d + shipping %d", got.Total, got.Subtotal, got.Shipping)
			}
			var sum int64
			for _, l := range got.Lines {
				sum += l.LineTotal
				if l.LineTotal != l.Part.UnitPrice*int64(l.Quantity) {
					t.Errorf("line %d total %d != %d x %d", l.Part.ID, l.LineTotal, l.Part.UnitPrice, l.Quantity)
				}
			}
			if sum != got.Subtotal {
				t.Errorf("sum of lines %d != subtotal %d", sum, got.Subtotal)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []Item
		want    []Item
		wantErr string
	}{
		{name: "keeps order", in: []Item{{8, 1}, {7, 1}}, want: []Item{{8, 1}, {7, 1}}},
		{name: "merges repeats", in: []Item{{4, 1}, {8, 1}, {4, 2}}, want: []Item{{4, 3}, {8, 1}}},
		{name: "empty", in: nil, want: []Item{}},
		{name: "zero quantity", in: []Item{{4, 0}}, wantErr: "between 1 and 99, got 0"},
		{name: "negative quantity", in: []Item{{4, -3}}, wantErr: "got -3"},
		{name: "huge quantity", in: []Item{{4, 1 << 30}}, wantErr: "between 1 and 99"},
		{name: "merged beyond max", in: []Item{{4, 60}, {4, 60}}, wantErr: "got 120"},
		{name: "zero part id", in: []Item{{0, 1}}, wantErr: "part id must be positive"},
		{name: "too many lines", in: manyLines(MaxLines + 1), wantErr: "at most 50 different parts"},
		{name: "max lines ok", in: manyLines(MaxLines), want: manyLines(MaxLines)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Merge(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errs.InvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Merge error = %v, want errs.InvalidArgument containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Merge mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTotalsMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expected, actual int64
		want             bool
	}{
		{802000, 802000, true},
		{802001, 802000, true},
		{801999, 802000, true},
		{802002, 802000, false},
		{801998, 802000, false},
		{0, 802000, false},
	}
	for _, tt := range tests {
		if got := TotalsMatch(tt.expected, tt.actual); got != tt.want {
			t.Errorf("TotalsMatch(%d, %d) = %v, want %v", tt.expected, tt.actual, got, tt.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	in := []Item{{8, 1}, {4, 2}, {7, 1}}
	want := []Item{{4, 2}, {7, 1}, {8, 1}}
	if diff := cmp.Diff(want, Canonical(in)); diff != "" {
		t.Errorf("Canonical mismatch (-want +got):\n%s", diff)
	}
	if in[0].PartID != 8 {
		t.Error("Canonical modified its input")
	}
}

func manyLines(n int) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{PartID: int64(i + 1), Quantity: 1}
	}
	return out
}
