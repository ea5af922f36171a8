// Package money does exact arithmetic on amounts of money held as integer
// minor units (centavos), and the conversion from and to floating reais that
// only the seed-compatible edge needs.
package money

import (
	"errors"
	"fmt"
	"math"
)

// BRL is the only currency the catalog sells in.
const BRL = "BRL"

// MinorPerMajor is the number of centavos in one real.
const MinorPerMajor = 100

// MaxReais is the largest amount FromReais accepts: far above any order, far
// below where float64 stops representing centavos exactly.
const MaxReais = 1e12

// ErrOverflow reports an amount outside the int64 range.
var ErrOverflow = errors.New("money: amount overflows")

// FromReais converts a floating amount in reais to centavos, rounding half
// away from zero to the nearest centavo (8020.005 → 802001). It rejects
// NaN, infinities and amounts beyond ±MaxReais.
func FromReais(r float64) (int64, error) {
	if math.IsNaN(r) || math.IsInf(r, 0) || math.Abs(r) > MaxReais {
		return 0, fmt.Errorf("money: %v reais is not a valid amount", r)
	}
	return int64(math.Round(r * MinorPerMajor)), nil
}

// ToReais converts centavos to reais for the seed-compatible API. Every
// centavo amount below 2^53 converts to the nearest float64, so a client
// that rounds to two decimals gets back the exact amount.
func ToReais(minor int64) float64 {
	return float64(minor) / MinorPerMajor
}

// Add returns a+b, or ErrOverflow.
func Add(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Mul returns amount×n, or ErrOverflow.
func Mul(amount int64, n int64) (int64, error) {
	if amount == 0 || n == 0 {
		return 0, nil
	}
	p := amount * n
	if p/n != amount || (amount == -1 && n == math.MinInt64) || (n == -1 && amount == math.MinInt64) {
		return 0, ErrOverflow
	}
	return p, nil
}

// Format renders centavos as "R$ 8.020,00" for messages.
func Format(minor int64) string {
	sign := ""
	if minor < 0 {
		sign = "-"
		minor = -minor
	}
	whole, cents := minor/MinorPerMajor, minor%MinorPerMajor
	digits := fmt.Sprintf("%d", whole)
	var out []byte
	for i, d := range []byte(digits) {
		if i > 0 && (len(digits)-i)%3 == 0 {
			out = append(out, '.')
		}
		out = append(out, d)
	}
	return fmt.Sprintf("%sR$ %s,%02d", sign, out, cents)
}
