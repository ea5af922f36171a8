package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/server"
	"github.com/carbuild/carbuild/shared/errs"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
)

// memStore is a one-car catalog.Store.
type memStore struct{}

var (
	civic = catalog.Car{ID: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023}
	parts = []catalog.Part{{ID: 7, CarID: "civic", Name: "Chassi", Category: catalog.CategoryChassis, Price: 800000, Currency: "BRL"}}
)

func (memStore) ListCars(context.Context) ([]catalog.Car, error) { return []catalog.Car{civic}, nil }
func (memStore) FindCar(_ context.Context, key string) (catalog.Car, error) {
	if key == "civic" {
		return civic, nil
	}
	return catalog.Car{}, errs.NotFound
}
func (memStore) ListParts(_ context.Context, carID string, after int64, _ int) ([]catalog.Part, error) {
	if carID != "civic" || after >= 7 {
		return nil, nil
	}
	return parts, nil
}
func (memStore) GetParts(context.Context, []int64) ([]catalog.Part, error) { return parts, nil }

// fakeRevisions is a Revisions the test sets.
type fakeRevisions struct {
	mu      sync.Mutex
	rev     int64
	live    bool
	changed chan struct{}
}

func newFakeRevisions(rev int64, live bool) *fakeRevisions {
	return &fakeRevisions{rev: rev, live: live, changed: make(chan struct{})}
}

func (f *fakeRevisions) Revision() (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, f.live
}

func (f *fakeRevisions) Watch() (int64, bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, f.live, f.changed
}

func (f *fakeRevisions) set(rev int64, live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev, f.live = rev, live
	close(f.changed)
	f.changed = make(chan struct{})
}

// serve starts a gRPC server with both services over rev (nil: no
// Revisions at all) and returns a connection to it.
func serve(t *testing.T, rev server.Revisions, draining <-chan struct{}) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc := catalog.NewService(memStore{})
	catalogv1.RegisterCatalogServiceServer(srv, server.NewV1(svc, rev, draining))
	catalogopb.RegisterCatalogoServiceServer(srv, server.NewCompat(svc, rev))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readCalls calls every read method, by full method name, returning the
// header it answered.
var readCalls = map[string]func(ctx context.Context, conn *grpc.ClientConn, h *metadata.MD) error{
	catalogv1.CatalogService_ListCars_FullMethodName: func(ctx context.Context, conn *grpc.ClientConn, h *metadata.MD) error {
		_, err := catalogv1.NewCatalogServiceClient(conn).ListCars(ctx, &catalogv1.ListCarsRequest{}, grpc.Header(h))
		return err
	},
	catalogv1.CatalogService_ListParts_FullMethodName: func(ctx context.Context, conn *grpc.ClientConn, h *metadata.MD) error {
		_, err := catalogv1.NewCatalogServiceClient(conn).ListParts(ctx, &catalogv1.ListPartsRequest{CarId: "civic"}, grpc.Header(h))
		return err
	},
	catalogv1.CatalogService_BatchGetParts_FullMethodName: func(ctx context.Context, conn *grpc.ClientConn, h *metadata.MD) error {
		_, err := catalogv1.NewCatalogServiceClient(conn).BatchGetParts(ctx, &catalogv1.BatchGetPartsRequest{Ids: []string{"7"}}, grpc.Header(h))
		return err
	},
	catalogopb.CatalogoService_GetPecas_FullMethodName: func(ctx context.Context, conn *grpc.ClientConn, h *metadata.MD) error {
		_, err := catalogopb.NewCatalogoServiceClient(conn).GetPecas(ctx, &catalogopb.Carro{Modelo: "Civic"}, grpc.Header(h))
		return err
	},
}

// TestEveryReadMethodIsCovered keeps readCalls complete: every unary method
// of both services is a read and must answer the revision header.
func TestEveryReadMethodIsCovered(t *testing.T) {
	t.Parallel()
	for _, d := range []grpc.ServiceDesc{catalogv1.CatalogService_ServiceDesc, catalogopb.CatalogoService_ServiceDesc} {
		for _, m := range d.Methods {
			name := "/" + d.ServiceName + "/" + m.MethodName
			if readCalls[name] == nil {
				t.Errorf("%s has no case in readCalls: does it answer %s?", name, server.RevisionHeader)
			}
		}
	}
}

func TestRevisionHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rev  server.Revisions
		want []string // values of catalog-revision
	}{
		{"live", newFakeRevisions(42, true), []string{"42"}},
		{"not live", newFakeRevisions(42, false), nil},
		{"no revision source (cache off)", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			conn := serve(t, tt.rev, nil)
			for method, call := range readCalls {
				var h metadata.MD
				if err := call(ctx, conn, &h); err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				if diff := cmp.Diff(tt.want, h.Get(server.RevisionHeader)); diff != "" {
					t.Errorf("%s: %s header (-want +got):\n%s", method, server.RevisionHeader, diff)
				}
			}
		})
	}
}

// TestRevisionHeaderFollowsChanges checks that each call answers the
// revision known when it started, not a stale one.
func TestRevisionHeaderFollowsChanges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	rev := newFakeRevisions(1, true)
	conn := serve(t, rev, nil)
	call := readCalls[catalogopb.CatalogoService_GetPecas_FullMethodName]
	for _, st := range []struct {
		rev  int64
		live bool
		want []string
	}{{1, true, []string{"1"}}, {2, true, []string{"2"}}, {2, false, nil}, {3, true, []string{"3"}}} {
		rev.set(st.rev, st.live)
		var h metadata.MD
		if err := call(ctx, conn, &h); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, h.Get(server.RevisionHeader)); diff != "" {
			t.Errorf("revision %d live %v: header (-want +got):\n%s", st.rev, st.live, diff)
		}
	}
}

func recvWithin(t *testing.T, s grpc.ServerStreamingClient[catalogv1.CatalogRevision], d time.Duration) (*catalogv1.CatalogRevision, error) {
	t.Helper()
	type result struct {
		m   *catalogv1.CatalogRevision
		err error
	}
	c := make(chan result, 1)
	go func() { m, err := s.Recv(); c <- result{m, err} }()
	select {
	case r := <-c:
		return r.m, r.err
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
		return nil, nil
	}
}

func TestWatchRevision(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	rev := newFakeRevisions(5, true)
	draining := make(chan struct{})
	conn := serve(t, rev, draining)
	stream, err := catalogv1.NewCatalogServiceClient(conn).WatchRevision(ctx, &catalogv1.WatchRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := func(name string, w *catalogv1.CatalogRevision) {
		t.Helper()
		got, err := recvWithin(t, stream, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(w, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	want("initial state", &catalogv1.CatalogRevision{Revision: 5, Live: true})
	rev.set(6, true)
	want("new revision", &catalogv1.CatalogRevision{Revision: 6, Live: true})
	rev.set(6, true) // no change: no message
	rev.set(6, false)
	want("listener lost", &catalogv1.CatalogRevision{Revision: 6, Live: false})
	rev.set(7, true)
	want("back, newer", &catalogv1.CatalogRevision{Revision: 7, Live: true})

	close(draining)
	if _, err := recvWithin(t, stream, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("after draining began: got %v, want the stream to end cleanly (io.EOF)", err)
	}
	// A stream opened while draining ends at once, after the state.
	late, err := catalogv1.NewCatalogServiceClient(conn).WatchRevision(ctx, &catalogv1.WatchRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := recvWithin(t, late, 5*time.Second); err != nil || m.GetRevision() != 7 {
		t.Errorf("stream opened while draining: got %v, %v; want revision 7 first", m, err)
	}
	if _, err := recvWithin(t, late, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("stream opened while draining: got %v, want io.EOF", err)
	}
}

func TestWatchRevisionWithoutSource(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := serve(t, nil, nil)
	sctx, cancel := context.WithCancel(ctx)
	stream, err := catalogv1.NewCatalogServiceClient(conn).WatchRevision(sctx, &catalogv1.WatchRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := recvWithin(t, stream, 5*time.Second)
	if err != nil || got.GetRevision() != 0 || got.GetLive() {
		t.Errorf("without a source: got %v, %v; want revision 0, not live", got, err)
	}
	cancel()
	if _, err := recvWithin(t, stream, 5*time.Second); status.Code(err) != codes.Canceled {
		t.Errorf("after the client canceled: got %v, want Canceled", err)
	}
}

// TestWatchRevisionEndsOnClientCancel checks that the handler returns when
// the client goes away: a graceful stop then does not wait for it.
func TestWatchRevisionEndsOnClientCancel(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(srv, server.NewV1(catalog.NewService(memStore{}), newFakeRevisions(1, true), nil))
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	stream, err := catalogv1.NewCatalogServiceClient(conn).WatchRevision(ctx, &catalogv1.WatchRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recvWithin(t, stream, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Error("GracefulStop still waiting 5s after the client canceled its stream")
	}
	conn.Close()
}
