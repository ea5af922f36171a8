package config

import (
	"runtime/debug"
	"testing"
)

func TestGCLimits(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantLimit int64
		wantGC    int
	}{
		{name: "defaults", wantLimit: DefaultMemoryLimit, wantGC: DefaultGCPercent},
		{name: "user settings win", env: map[string]string{"GOGC": "100", "GOMEMLIMIT": "100MiB"}, wantLimit: 7 << 40, wantGC: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Stand-ins for what the runtime would have read from the
			// environment at start-up.
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(7 << 40)
			TuneGC(env(tt.env))
			if got := debug.SetMemoryLimit(-1); got != tt.wantLimit {
				t.Errorf("memory limit = %d; want %d", got, tt.wantLimit)
			}
			if got := debug.SetGCPercent(-1); got != tt.wantGC {
				t.Errorf("GC percent = %d; want %d", got, tt.wantGC)
			}
			debug.SetGCPercent(100)
		})
	}
}

func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	debug.SetMemoryLimit(7 << 40)
	SetMemoryLimit(func(string) (string, bool) { return "", false }, 96<<20)
	if got := debug.SetMemoryLimit(-1); got != 96<<20 {
		t.Errorf("memory limit = %d; want %d", got, 96<<20)
	}
	debug.SetMemoryLimit(7 << 40)
	SetMemoryLimit(func(k string) (string, bool) { return "100MiB", k == "GOMEMLIMIT" }, 96<<20)
	if got := debug.SetMemoryLimit(-1); got != 7<<40 {
		t.Errorf("memory limit with GOMEMLIMIT set = %d; want the runtime's (%d)", got, int64(7<<40))
	}
}
