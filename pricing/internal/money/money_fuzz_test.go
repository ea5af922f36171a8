package money

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

// FuzzFromReais: any float converts to the nearest centavo or is refused;
// it never panics and never overflows.
func FuzzFromReais(f *testing.F) {
	for _, r := range []float64{0, 8020, 8020.005, -0.005, 0.1 + 0.2, 2.675, MaxReais, MaxReais * 10, math.NaN(), math.Inf(1), -math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, r float64) {
		got, err := FromReais(r)
		if err != nil {
			if !(math.IsNaN(r) || math.IsInf(r, 0) || math.Abs(r) > MaxReais) {
				t.Fatalf("FromReais(%v) refused a valid amount: %v", r, err)
			}
			return
		}
		if math.Abs(float64(got)-r*MinorPerMajor) > 0.5+1e-6*math.Abs(r*MinorPerMajor) {
			t.Fatalf("FromReais(%v) = %d centavos, not the nearest", r, got)
		}
	})
}

// FuzzReaisRoundTrip: every centavo amount below 2^53 survives the trip to
// floating reais and back exactly (what the seed-compatible API relies on).
func FuzzReaisRoundTrip(f *testing.F) {
	for _, m := range []int64{0, 1, -1, 802000, 874500, 1 << 52, -(1 << 52), MaxReais * 100} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, minor int64) {
		if minor > MaxReais*MinorPerMajor || minor < -MaxReais*MinorPerMajor {
			return
		}
		back, err := FromReais(ToReais(minor))
		if err != nil || back != minor {
			t.Fatalf("%d → %v reais → %d (%v)", minor, ToReais(minor), back, err)
		}
		if s := Format(minor); !strings.Contains(s, "R$ ") {
			t.Fatalf("Format(%d) = %q", minor, s)
		}
	})
}

// FuzzArithmetic: Add and Mul are exact or report ErrOverflow, checked
// against math/big.
func FuzzArithmetic(f *testing.F) {
	f.Add(int64(1), int64(2))
	f.Add(int64(math.MaxInt64), int64(1))
	f.Add(int64(math.MinInt64), int64(-1))
	f.Add(int64(-1), int64(math.MinInt64))
	f.Add(int64(1)<<62, int64(2))
	f.Fuzz(func(t *testing.T, a, b int64) {
		check := func(op string, got int64, err error, exact *big.Int) {
			fits := exact.IsInt64()
			switch {
			case fits && (err != nil || got != exact.Int64()):
				t.Fatalf("%s(%d, %d) = %d, %v; want %v", op, a, b, got, err, exact)
			case !fits && !errors.Is(err, ErrOverflow):
				t.Fatalf("%s(%d, %d) = %d, %v; want ErrOverflow (exact %v)", op, a, b, got, err, exact)
			}
		}
		s, err := Add(a, b)
		check("Add", s, err, new(big.Int).Add(big.NewInt(a), big.NewInt(b)))
		p, err := Mul(a, b)
		check("Mul", p, err, new(big.Int).Mul(big.NewInt(a), big.NewInt(b)))
	})
}
