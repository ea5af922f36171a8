package respcache

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/shared/catalogrev/catalogrevtest"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// startWatcher runs a Watcher for a new cache against a fake catalog.
func startWatcher(t *testing.T) (*Cache, *catalogrevtest.Server, *grpc.Server) {
	t.Helper()
	c := New(prometheus.NewRegistry(), Options{MaxBytes: 1 << 20, TTL: time.Minute})
	rs, srv, _ := catalogrevtest.Start(t, c)
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
		run  func(t *testing.T, c *Cache, rs *catalogrevtest.Server, srv *grpc.Server)
	}{
		{"first message makes it live", func(t *testing.T, c *Cache, rs *catalogrevtest.Server, _ *grpc.Server) {
			if c.Live() {
				t.Fatal("live before any message")
			}
			rs.Next(t) <- rev(5, true)
			eventually(t, "live", c.Live)
		}},
		{"new revision empties", func(t *testing.T, c *Cache, rs *catalogrevtest.Server, _ *grpc.Server) {
			ch := rs.Next(t)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- rev(6, true)
			eventually(t, "emptied", func() bool { return c.Len() == 0 })
			if !c.Live() {
				t.Error("not live after a new revision")
			}
		}},
		{"live=false: not live and emptied", func(t *testing.T, c *Cache, rs *catalogrevtest.Server, _ *grpc.Server) {
			ch := rs.Next(t)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- rev(5, false)
			eventually(t, "not live", func() bool { return !c.Live() })
			if c.Len() != 0 {
				t.Errorf("%d entries kept while the catalog cannot see changes", c.Len())
			}
		}},
		{"lost stream: not live; reopened at the same revision: kept", func(t *testing.T, c *Cache, rs *catalogrevtest.Server, _ *grpc.Server) {
			ch := rs.Next(t)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- nil // the catalog recycles the connection
			ch = rs.Next(t)
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
		{"lost stream, reopened at another revision: emptied", func(t *testing.T, c *Cache, rs *catalogrevtest.Server, _ *grpc.Server) {
			ch := rs.Next(t)
			ch <- rev(5, true)
			eventually(t, "live", c.Live)
			put(t, c, "a", 5)
			ch <- nil
			rs.Next(t) <- rev(6, true)
			eventually(t, "live", c.Live)
			if c.Len() != 0 {
				t.Errorf("%d entries kept across a change of revision", c.Len())
			}
		}},
		{"server gone: not live", func(t *testing.T, c *Cache, rs *catalogrevtest.Server, srv *grpc.Server) {
			rs.Next(t) <- rev(5, true)
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
