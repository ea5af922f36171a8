package rest_test

import (
	"io"
	"os"
	"testing"

	"google.golang.org/grpc/grpclog"
)

// TestMain silences gRPC's logger once, before any test starts a server: the
// logger is a process global that server goroutines of an earlier test may
// still read, so setting it inside a test is a data race (seen in
// `make test-race`).
func TestMain(m *testing.M) {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
	os.Exit(m.Run())
}
