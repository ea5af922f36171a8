package shop

import (
	"strings"
	"testing"
)

func TestPrice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		items   []Item
		want    Totals
		wantErr bool
	}{
		{"civic chassis: minimum shipping", []Item{{"7", 1}}, Totals{800000, 2000, 802000}, false},
		{"two headlights: R$ 30", []Item{{"10", 2}}, Totals{70000, 3000, 73000}, false},
		{"above R$ 10,000: free", []Item{{"2", 2}, {"15", 1}}, Totals{1400000, 0, 1400000}, false},
		{"chassis + engine: free", []Item{{"7", 1}, {"8", 1}}, Totals{1450000, 0, 1450000}, false},
		{"exactly R$ 10,000: not free", []Item{{"4", 1}, {"1", 1}, {"2", 1}, {"3", 1}, {"5", 1}, {"6", 1}}, Totals{1000000, 9000, 1009000}, false},
		{"two chassis", []Item{{"1", 1}, {"7", 1}}, Totals{}, true},
		{"chassis quantity 2", []Item{{"7", 2}}, Totals{}, true},
		{"unknown part", []Item{{"99", 1}}, Totals{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Price(tt.items)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Price() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Price() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestShippingMinimum(t *testing.T) {
	t.Parallel()
	if got := Shipping(100, 1); got != ShippingMinimum {
		t.Errorf("Shipping(100, 1) = %d, want %d", got, ShippingMinimum)
	}
	if got := Shipping(0, 0); got != 0 {
		t.Errorf("Shipping(0, 0) = %d, want 0", got)
	}
}

// TestCompatParts pins the seed-compatible order per car (the earlier
// system's ORDER BY nome), as dev/e2e checks it against the running catalog.
func TestCompatParts(t *testing.T) {
	tests := []struct {
		car  string
		want string // ids
	}{
		{"fusca", "6 1 4 2 5 3"},
		{"Civic", "12 7 10 8 11 9 13"},
		{"corolla", "19 14 17 15 18 16 20"},
		{"gol", ""},
	}
	for _, tt := range tests {
		var ids []string
		for _, p := range CompatParts(tt.car) {
			ids = append(ids, p.ID)
		}
		if got := strings.Join(ids, " "); got != tt.want {
			t.Errorf("CompatParts(%q) ids = %q, want %q", tt.car, got, tt.want)
		}
	}
}
