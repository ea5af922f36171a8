package edge

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAdaptiveLimit drives the limit with made-up completions: slow
// windows shrink it by a fifth down to the floor, fast windows that use
// the limit grow it by one up to the ceiling, and fast windows that leave
// it unused change nothing.
func TestAdaptiveLimit(t *testing.T) {
	a := newAdaptive(50*time.Millisecond, 4, 20)
	window := func(slow int, inFlight int64) int64 {
		for i := range adaptiveWindow {
			d := 10 * time.Millisecond
			if i < slow {
				d = 80 * time.Millisecond
			}
			a.done(d, inFlight)
		}
		return a.current()
	}
	steps := []struct {
		name     string
		slow     int
		inFlight int64
		want     int64
	}{
		{"starts at the ceiling, fast and full: stays", 0, 20, 20},
		{"a tenth slow is tolerated", adaptiveWindow / 10, 20, 20},
		{"more than a tenth slow: a fifth off", adaptiveWindow/10 + 1, 20, 16},
		{"slow again", adaptiveWindow, 16, 12},
		{"slow again", adaptiveWindow, 12, 9},
		{"slow again", adaptiveWindow, 9, 7},
		{"slow again", adaptiveWindow, 7, 5},
		{"slow again: the floor", adaptiveWindow, 5, 4},
		{"slow at the floor", adaptiveWindow, 4, 4},
		{"fast but the limit unused: unchanged", 0, 2, 4},
		{"fast and the limit used: one more", 0, 4, 5},
		{"fast and used", 0, 4, 6},
	}
	for _, s := range steps {
		if got := window(s.slow, s.inFlight); got != s.want {
			t.Fatalf("%s: limit %d, want %d", s.name, got, s.want)
		}
	}
	for range 100 {
		window(0, a.current())
	}
	if got := a.current(); got != 20 {
		t.Errorf("after many fast, full windows: %d, want the ceiling 20", got)
	}
}

// TestAdmissionLimitGauge checks that carbuild_gateway_admission_limit
// shows the bound in force: the fixed one, or the adaptive one as it moves;
// without a bound there is no series.
func TestAdmissionLimitGauge(t *testing.T) {
	limitOf := func(reg *prometheus.Registry) (float64, bool) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "carbuild_gateway_admission_limit" {
				return mf.GetMetric()[0].GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	reg := prometheus.NewRegistry()
	New(reg, Options{MaxInFlight: 64})
	if got, ok := limitOf(reg); !ok || got != 64 {
		t.Errorf("fixed bound 64: gauge %v (present %v)", got, ok)
	}

	reg = prometheus.NewRegistry()
	g := New(reg, Options{MaxInFlight: 20, MinInFlight: 4, LatencyTarget: 50 * time.Millisecond})
	for range adaptiveWindow {
		g.adaptive.done(80*time.Millisecond, 20) // a slow window: 20 → 16
	}
	if got, ok := limitOf(reg); !ok || got != 16 {
		t.Errorf("adaptive bound after a slow window: gauge %v (present %v), want 16", got, ok)
	}

	reg = prometheus.NewRegistry()
	New(reg, Options{Rate: 10})
	if got, ok := limitOf(reg); ok {
		t.Errorf("no bound: gauge present (%v)", got)
	}
}
