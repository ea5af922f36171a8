package catalogclient

import (
	"testing"
	"time"
)

// TestReopenDelay is the reopening rule: a stream that ends after it was
// healthy (the instance holding it stopped, or the catalog recycled the
// connection) is reopened without waiting, so the caches are bypassed no
// longer than the reopening takes; failures in a row back off, doubling up
// to the maximum, and a healthy stream resets the backoff.
func TestReopenDelay(t *testing.T) {
	t.Parallel()
	const minB, maxB = 20 * time.Millisecond, time.Second
	tests := []struct {
		name             string
		healthy          bool
		backoff          time.Duration
		wantWait, wantNx time.Duration
	}{
		{"healthy stream ended: at once, backoff reset", true, 640 * time.Millisecond, 0, minB},
		{"healthy stream ended at the minimum backoff", true, minB, 0, minB},
		{"first failure: the minimum", false, minB, minB, 2 * minB},
		{"failures in a row double", false, 160 * time.Millisecond, 160 * time.Millisecond, 320 * time.Millisecond},
		{"capped at the maximum", false, 640 * time.Millisecond, 640 * time.Millisecond, maxB},
		{"at the maximum it stays", false, maxB, maxB, maxB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, next := reopenDelay(tt.healthy, tt.backoff, minB, maxB)
			if wait != tt.wantWait || next != tt.wantNx {
				t.Errorf("reopenDelay(%v, %v) = %v, %v; want %v, %v", tt.healthy, tt.backoff, wait, next, tt.wantWait, tt.wantNx)
			}
		})
	}
	// The worst case after a healthy stream: a sequence of failed attempts
	// never waits longer than the maximum between two attempts.
	backoff := minB
	wait, backoff := reopenDelay(true, backoff, minB, maxB)
	for range 20 {
		if wait > maxB {
			t.Fatalf("waited %v between two attempts, more than the maximum %v", wait, maxB)
		}
		wait, backoff = reopenDelay(false, backoff, minB, maxB)
	}
}
