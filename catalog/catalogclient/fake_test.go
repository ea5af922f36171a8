package catalogclient_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/catalog/catalogclient"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	"github.com/carbuild/carbuild/shared/grpctest"
)

// fakeCatalog is a catalog whose WatchRevision streams say what the test
// sends (the Watcher's and the Cache's tests): each new stream hands the
// test a channel (Next); a nil message ends the stream.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	streams chan chan *catalogv1.CatalogRevision
}

// WatchRevision serves one stream as the test drives it.
func (s *fakeCatalog) WatchRevision(_ *catalogv1.WatchRevisionRequest, st grpc.ServerStreamingServer[catalogv1.CatalogRevision]) error {
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

// Next waits for the next stream the watcher opens and returns the channel
// that drives it.
func (s *fakeCatalog) Next(t testing.TB) chan<- *catalogv1.CatalogRevision {
	t.Helper()
	select {
	case ch := <-s.streams:
		return ch
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher opened no stream")
		return nil
	}
}

// startFake serves a fake catalog on an in-memory listener and runs a
// catalogclient.Watcher (with millisecond backoff) reporting to f. It returns
// the fake, its gRPC server (Stop takes the catalog away) and a function
// that ends the watcher and waits for it; both also happen at cleanup.
func startFake(t testing.TB, f catalogclient.Follower) (*fakeCatalog, *grpc.Server, func()) {
	t.Helper()
	fake := &fakeCatalog{streams: make(chan chan *catalogv1.CatalogRevision)}
	srv, conn := grpctest.Serve(t, func(s *grpc.Server) { catalogv1.RegisterCatalogServiceServer(s, fake) })
	w := catalogclient.NewWatcher(slog.New(slog.DiscardHandler), catalogv1.NewCatalogServiceClient(conn), f)
	w.MinBackoff, w.MaxBackoff = time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return fake, srv, stop
}
