package catalogrev

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// revServer is a catalog whose WatchRevision streams say what the test
// sends: each new stream hands the test a channel; a nil message ends the
// stream.
type revServer struct {
	catalogv1.UnimplementedCatalogServiceServer
	streams chan chan *catalogv1.CatalogRevision
}

func (s *revServer) WatchRevision(_ *catalogv1.WatchRevisionRequest, st grpc.ServerStreamingServer[catalogv1.CatalogRevision]) error {
	ch := make(chan *catalogv1.CatalogRevision)
	select {
	case s.streams <- ch:
	case <-st.Context().Done():
		return st.Context().Err()
	}
	for {
		select {
		case m := <-ch:
			if m == nil {
				return nil
			}
			if err := st.Send(m); err != nil {
				return err
			}
		case <-st.Context().Done():
			return st.Context().Err()
		}
	}
}

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

// startWatcher runs a Watcher for a recorder against a bufconn catalog.
func startWatcher(t *testing.T) (*recorder, *revServer, *grpc.Server, context.CancelFunc) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	rs := &revServer{streams: make(chan chan *catalogv1.CatalogRevision)}
	catalogv1.RegisterCatalogServiceServer(srv, rs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &recorder{}
	w := NewWatcher(slog.New(slog.DiscardHandler), catalogv1.NewCatalogServiceClient(conn), r)
	w.MinBackoff, w.MaxBackoff = time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, rs, srv, stop
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

func nextStream(t *testing.T, rs *revServer) chan *catalogv1.CatalogRevision {
	t.Helper()
	select {
	case ch := <-rs.streams:
		return ch
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher opened no stream")
		return nil
	}
}

func TestWatcher(t *testing.T) {
	t.Parallel()
	rev := func(n int64, live bool) *catalogv1.CatalogRevision {
		return &catalogv1.CatalogRevision{Revision: n, Live: live}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, r *recorder, rs *revServer, srv *grpc.Server, stop func())
	}{
		{"every message is observed in order", func(t *testing.T, r *recorder, rs *revServer, _ *grpc.Server, _ func()) {
			ch := nextStream(t, rs)
			ch <- rev(5, true)
			ch <- rev(6, true)
			ch <- rev(6, false)
			waitFor(t, r, "observe 5 true", "observe 6 true", "observe 6 false")
		}},
		{"stream end: lost, then reopened", func(t *testing.T, r *recorder, rs *revServer, _ *grpc.Server, _ func()) {
			ch := nextStream(t, rs)
			ch <- rev(5, true)
			ch <- nil // the catalog recycles the connection
			nextStream(t, rs) <- rev(5, true)
			waitFor(t, r, "observe 5 true", "lost", "observe 5 true")
		}},
		{"stream that fails at once: lost on every attempt, reopened", func(t *testing.T, r *recorder, rs *revServer, _ *grpc.Server, _ func()) {
			nextStream(t, rs) <- nil
			nextStream(t, rs) <- nil
			nextStream(t, rs) <- rev(7, true)
			waitFor(t, r, "lost", "lost", "observe 7 true")
		}},
		{"server gone: lost", func(t *testing.T, r *recorder, rs *revServer, srv *grpc.Server, _ func()) {
			nextStream(t, rs) <- rev(5, true)
			waitFor(t, r, "observe 5 true")
			srv.Stop()
			waitFor(t, r, "observe 5 true", "lost")
		}},
		{"context ends: lost, and Run returns", func(t *testing.T, r *recorder, rs *revServer, _ *grpc.Server, stop func()) {
			nextStream(t, rs) <- rev(5, true)
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
			r, rs, srv, stop := startWatcher(t)
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
		got, ok := Parse(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
