package respcache

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/carbuild/carbuild/shared/catalogrev"
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

// startWatcher runs a Watcher for a new cache against a bufconn catalog.
func startWatcher(t *testing.T) (*Cache, *revServer, *grpc.Server) {
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
	c := New(prometheus.NewRegistry(), Options{MaxBytes: 1 << 20, TTL: time.Minute})
	w := catalogrev.NewWatcher(slog.New(slog.DiscardHandler), catalogv1.NewCatalogServiceClient(conn), c)
	w.MinBackoff, w.MaxBackoff = time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, rs, srv
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
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

// put stores an answer at rev the way the middleware does.
func put(t *testing.T, c *Cache, key string, rev int64) {
	t.Helper()
	_, live, epoch := c.lookup(key)
	if !live || !c.store(key, &answer{revision: strconv.FormatInt(rev, 10), body: []byte("{}")}, rev, epoch) {
		t.Fatalf("could not store %s at revision %d (live %v)", key, rev, live)
	}
}

func TestWatcher(t *testing.T) {
	t.Parallel()
	rev := func(n int64, live bool) *catalogv1.CatalogRevision {
		return &catalogv1.CatalogRevision{Revision: n, Live: live}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, c *Cache, rs *revServer, srv *grpc.Server)
	}{
		{"first message makes it live", func(t *testing.T, c *Cache, rs *revServer, _ *grpc.Server) {
			if c.Live() {
				t.Fatal("live before any message")
			}
			nextStream(t, rs) <- rev(5, true)
			eventually(t, "live", c.Live)
		}},
		{"new revision empties", func(t *testing.T, c *Cache, rs *revServer, _ *grpc.Server) {
			ch := nextStream(t, rs)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- rev(6, true)
			eventually(t, "emptied", func() bool { return c.Len() == 0 })
			if !c.Live() {
				t.Error("not live after a new revision")
			}
		}},
		{"live=false: not live and emptied", func(t *testing.T, c *Cache, rs *revServer, _ *grpc.Server) {
			ch := nextStream(t, rs)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- rev(5, false)
			eventually(t, "not live", func() bool { return !c.Live() })
			if c.Len() != 0 {
				t.Errorf("%d entries kept while the catalog cannot see changes", c.Len())
			}
		}},
		{"lost stream: not live; reopened at the same revision: kept", func(t *testing.T, c *Cache, rs *revServer, _ *grpc.Server) {
			ch := nextStream(t, rs)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- nil // the catalog recycles the connection
			ch = nextStream(t, rs)
			if c.Live() {
				t.Error("live while no stream is up")
			}
			if a, live, _ := c.lookup("a"); a != nil || live {
				t.Error("entry served while no stream is up")
			}
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			if a, _, _ := c.lookup("a"); a == nil {
				t.Error("entry dropped although the revision did not change")
			}
		}},
		{"lost stream, reopened at another revision: emptied", func(t *testing.T, c *Cache, rs *revServer, _ *grpc.Server) {
			ch := nextStream(t, rs)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- nil
			nextStream(t, rs) <- rev(6, true)
			eventually(t, "live", c.Live)
			if c.Len() != 0 {
				t.Errorf("%d entries kept across a change of revision", c.Len())
			}
		}},
		{"server gone: not live", func(t *testing.T, c *Cache, rs *revServer, srv *grpc.Server) {
			nextStream(t, rs) <- rev(5, true)
			eventually(t, "live", c.Live)
			srv.Stop()
			eventually(t, "not live", func() bool { return !c.Live() })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rs, srv := startWatcher(t)
			tt.run(t, c, rs, srv)
		})
	}
}
