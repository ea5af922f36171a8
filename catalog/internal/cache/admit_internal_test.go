package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
)

type catalogCar struct{ id, name string }

var timeZero time.Time

func toCars(cs []catalogCar) []catalog.Car {
	out := make([]catalog.Car, len(cs))
	for i, c := range cs {
		out[i] = catalog.Car{ID: c.id, Name: c.name, FirstYear: 2020, LastYear: 2021}
	}
	return out
}

// TestDoorkeeper drives the admission rule: a car's parts are loaded whole
// on its second miss within the window (two generations of at least
// minSeen cars), never on its first.
func TestDoorkeeper(t *testing.T) {
	t.Parallel()
	type step struct {
		car  string
		want bool
	}
	distinct := func(prefix string, n int) []step {
		steps := make([]step, n)
		for i := range steps {
			steps[i] = step{fmt.Sprintf("%s%d", prefix, i), false}
		}
		return steps
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first miss not admitted, second admitted", []step{{"civic", false}, {"civic", true}}},
		{"an admitted car starts over (evicted later, it must earn its place again)", []step{{"civic", false}, {"civic", true}, {"civic", false}, {"civic", true}}},
		{"cars are told apart", []step{{"civic", false}, {"fusca", false}, {"fusca", true}, {"civic", true}}},
		{"still admitted after one generation (kept in the old one)", append(append([]step{{"civic", false}}, distinct("gen-", minSeen)...), step{"civic", true})},
		{"forgotten after two generations", append(append([]step{{"civic", false}}, distinct("gen-", 2*minSeen+1)...), step{"civic", false})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(nil, Options{}, nil)
			for i, st := range tt.steps {
				s.mu.Lock()
				got := s.admitLocked(st.car)
				s.mu.Unlock()
				if got != st.want {
					t.Fatalf("step %d: admit(%q) = %v, want %v", i, st.car, got, st.want)
				}
			}
			if n := len(s.seen) + len(s.seenOld); n > 2*minSeen+1 {
				t.Errorf("the doorkeeper holds %d cars, want at most %d", n, 2*minSeen+1)
			}
		})
	}
}

// TestCarIndex checks which keys the index of the list of cars answers:
// ids first, then ASCII names, case-insensitively; anything else is left
// to PostgreSQL (ok false).
func TestCarIndex(t *testing.T) {
	t.Parallel()
	cars := []catalogCar{
		{"x1", "Y1"}, {"y1", "X1"}, {"ele", "Élan"}, {"civic", "Civic"},
	}
	e := newCarsEntry(toCars(cars), 10, timeZero)
	tests := []struct {
		key    string // as FindCar lowercases it
		wantID string // "" with ok false
	}{
		{"x1", "x1"},       // id beats the other car's name
		{"y1", "y1"},       // id beats the other car's name
		{"civic", "civic"}, // id and name of the same car
		{"élan", ""},       // non-ASCII key: PostgreSQL decides
		{"ele", "ele"},     // its id is ASCII
		{"gol", ""},        // unknown: PostgreSQL says not found
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := e.find(tt.key)
			if ok != (tt.wantID != "") || got.ID != tt.wantID {
				t.Errorf("find(%q) = %q, %v; want %q", tt.key, got.ID, ok, tt.wantID)
			}
		})
	}
	if big := newCarsEntry(toCars(cars), 3, timeZero); big.byID != nil {
		t.Error("a list longer than MaxKeys was indexed")
	}
}
