package catalogclient_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/catalog/catalogclient"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// recorder is a Follower that writes down what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Observe(revision int64, live bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("observe %d %v", revision, live))
}

func (r *recorder) Lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "lost")
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor waits until the recorder's events start with want.
func waitFor(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.got()
		if len(got) >= len(want) && slices.Equal(got[:len(want)], want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: got %q, want them to start with %q", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWatcher(t *testing.T) {
	t.Parallel()
	rev := func(n int64, live bool) *catalogv1.CatalogRevision {
		return &catalogv1.CatalogRevision{Revision: n, Live: live}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, r *recorder, rs *fakeCatalog, srv *grpc.Server, stop func())
	}{
		{"every message is observed in order", func(t *testing.T, r *recorder, rs *fakeCatalog, _ *grpc.Server, _ func()) {
			ch := rs.Next(t)
			ch <- rev(5, true)
			ch <- rev(6, true)
			ch <- rev(6, false)
			waitFor(t, r, "observe 5 true", "observe 6 true", "observe 6 false")
		}},
		{"stream end: lost, then reopened", func(t *testing.T, r *recorder, rs *fakeCatalog, _ *grpc.Server, _ func()) {
			ch := rs.Next(t)
			ch <- rev(5, true)
			ch <- nil // the catalog recycles the connection
			rs.Next(t) <- rev(5, true)
			waitFor(t, r, "observe 5 true", "lost", "observe 5 true")
		}},
		{"stream that fails at once: lost on every attempt, reopened", func(t *testing.T, r *recorder, rs *fakeCatalog, _ *grpc.Server, _ func()) {
			rs.Next(t) <- nil
			rs.Next(t) <- nil
			rs.Next(t) <- rev(7, true)
			waitFor(t, r, "lost", "lost", "observe 7 true")
		}},
		{"server gone: lost", func(t *testing.T, r *recorder, rs *fakeCatalog, srv *grpc.Server, _ func()) {
			rs.Next(t) <- rev(5, true)
			waitFor(t, r, "observe 5 true")
			srv.Stop()
			waitFor(t, r, "observe 5 true", "lost")
		}},
		{"context ends: lost, and Run returns", func(t *testing.T, r *recorder, rs *fakeCatalog, _ *grpc.Server, stop func()) {
			rs.Next(t) <- rev(5, true)
			waitFor(t, r, "observe 5 true")
			stop()
			if got, want := r.got(), []string{"observe 5 true", "lost"}; !slices.Equal(got, want) {
				t.Errorf("events: got %q, want %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			rs, srv, stop := startFake(t, r)
			tt.run(t, r, rs, srv, stop)
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"", 0, false},
		{"12", 12, true},
		{"0", 0, true},
		{"x", 0, false},
		{"9223372036854775808", 0, false},
	}
	for _, tt := range tests {
		got, ok := catalogclient.Parse(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
