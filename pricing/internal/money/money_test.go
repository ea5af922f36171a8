package money

import (
	"errors"
	"math"
	"testing"
)

func TestFromReais(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      float64
		want    int64
		wantErr bool
	}{
		{"zero", 0, 0, false},
		{"whole", 8000, 800000, false},
		{"cents", 8020.5, 802050, false},
		{"one centavo", 0.01, 1, false},
		{"binary fraction 0.1+0.2", 0.1 + 0.2, 30, false},
		{"half rounds away from zero", 0.005, 1, false},
		{"just below half", 0.0049, 0, false},
		{"negative", -20, -2000, false},
		{"negative half", -0.005, -1, false},
		{"typical total", 8745, 874500, false},
		{"float noise 1.15", 1.15, 115, false},
		{"float noise 2.675", 2.675, 268, false},
		{"max accepted", MaxReais, MaxReais * 100, false},
		{"beyond max", MaxReais * 10, 0, true},
		{"NaN", math.NaN(), 0, true},
		{"+Inf", math.Inf(1), 0, true},
		{"-Inf", math.Inf(-1), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := FromReais(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("FromReais(%v) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("FromReais(%v) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestToReaisRoundTrips(t *testing.T) {
	t.Parallel()
	for _, minor := range []int64{0, 1, 5, 99, 100, 115, 2000, 802000, 874500, 1000001, 123456789012, -2000} {
		r := ToReais(minor)
		back, err := FromReais(r)
		if err != nil || back != minor {
			t.Errorf("FromReais(ToReais(%d)) = %d, %v; want %d", minor, back, err, minor)
		}
	}
	if got := ToReais(802000); got != 8020 {
		t.Errorf("ToReais(802000) = %v, want 8020", got)
	}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, b    int64
		want    int64
		wantErr bool
	}{
		{"small", 1500, 500, 2000, false},
		{"negative", -5, 3, -2, false},
		{"max plus zero", math.MaxInt64, 0, math.MaxInt64, false},
		{"overflow", math.MaxInt64, 1, 0, true},
		{"underflow", math.MinInt64, -1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Add(tt.a, tt.b)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Add(%d, %d) = %d, %v; want %d, err %v", tt.a, tt.b, got, err, tt.want, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, ErrOverflow) {
				t.Errorf("Add error = %v, want ErrOverflow", err)
			}
		})
	}
}

func TestMul(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, n    int64
		want    int64
		wantErr bool
	}{
		{"zero amount", 0, 7, 0, false},
		{"zero count", 800000, 0, 0, false},
		{"simple", 35000, 2, 70000, false},
		{"large ok", math.MaxInt64 / 2, 2, math.MaxInt64 - 1, false},
		{"overflow", math.MaxInt64/2 + 1, 2, 0, true},
		{"min times -1", math.MinInt64, -1, 0, true},
		{"-1 times min", -1, math.MinInt64, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Mul(tt.a, tt.n)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Mul(%d, %d) = %d, %v; want %d, err %v", tt.a, tt.n, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{0, "R$ 0,00"},
		{5, "R$ 0,05"},
		{2000, "R$ 20,00"},
		{802000, "R$ 8.020,00"},
		{100000000, "R$ 1.000.000,00"},
		{-2050, "-R$ 20,50"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
