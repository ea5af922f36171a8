package config

import "runtime/debug"

// Garbage collector defaults for our services: a live heap of a few MiB,
// thousands of short requests per second. Collecting less often (GOGC=400)
// cut the gateway's CPU per request measurably in the same-run comparison of
// docs/performance.md; the soft memory limit makes the collector work harder
// before the heap could approach the 64 MiB budget of a pod.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 48 << 20
)

// TuneGC applies DefaultGCPercent and DefaultMemoryLimit unless the standard
// GOGC or GOMEMLIMIT variables say otherwise.
func TuneGC(lookupEnv func(string) (string, bool)) {
	if v, ok := lookupEnv("GOGC"); !ok || v == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	SetMemoryLimit(lookupEnv, DefaultMemoryLimit)
}

// SetMemoryLimit sets the soft memory limit to limit bytes unless the
// GOMEMLIMIT variable says otherwise: for a service whose live heap is
// larger than a few MiB by design (a cache), so that GOGC's headroom is not
// cut to a collection every few MiB of garbage.
func SetMemoryLimit(lookupEnv func(string) (string, bool), limit int64) {
	if v, ok := lookupEnv("GOMEMLIMIT"); !ok || v == "" {
		debug.SetMemoryLimit(limit)
	}
}
