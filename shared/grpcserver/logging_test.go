package grpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/shared/errs"
)

func TestLogUnary(t *testing.T) {
	tests := []struct {
		name      string
		level     slog.Level // the logger's level
		err       error
		wantLevel string // "" when nothing may be logged
		wantError string
		wantCode  codes.Code // what the client is answered
		wantMsg   string
	}{
		{name: "ok at info is silent", level: slog.LevelInfo},
		{name: "ok at debug", level: slog.LevelDebug, wantLevel: "DEBUG"},
		{name: "client error at info is silent", level: slog.LevelInfo, err: status.Error(codes.InvalidArgument, "bad id"), wantCode: codes.InvalidArgument, wantMsg: "bad id"},
		{name: "not found at debug", level: slog.LevelDebug, err: status.Error(codes.NotFound, "part 99 not found"), wantLevel: "DEBUG", wantError: "part 99 not found", wantCode: codes.NotFound, wantMsg: "part 99 not found"},
		{name: "unavailable warns", level: slog.LevelInfo, err: status.Error(codes.Unavailable, "db down"), wantLevel: "WARN", wantError: "db down", wantCode: codes.Unavailable, wantMsg: "db down"},
		{name: "deadline warns", level: slog.LevelInfo, err: status.Error(codes.DeadlineExceeded, "slow"), wantLevel: "WARN", wantError: "slow", wantCode: codes.DeadlineExceeded, wantMsg: "slow"},
		{name: "internal is an error", level: slog.LevelInfo, err: status.Error(codes.Internal, "boom"), wantLevel: "ERROR", wantError: "boom", wantCode: codes.Internal, wantMsg: "boom"},
		{name: "a domain error answers its kind and message, logs its cause", level: slog.LevelInfo, err: fmt.Errorf("save: %w", errs.Wrap(errs.Unavailable, errors.New("dial 10.0.0.7"), "database unavailable")), wantLevel: "WARN", wantError: "save: database unavailable: dial 10.0.0.7", wantCode: codes.Unavailable, wantMsg: "database unavailable"},
		{name: "a plain error is internal, logged, never sent", level: slog.LevelWarn, err: errors.New("plain"), wantLevel: "ERROR", wantError: "plain", wantCode: codes.Internal, wantMsg: "internal error"},
		{name: "warn hidden at error level", level: slog.LevelError, err: status.Error(codes.Unavailable, "db down"), wantCode: codes.Unavailable, wantMsg: "db down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
			info := &grpc.UnaryServerInfo{FullMethod: "/carbuild.catalog.v1.CatalogService/ListParts"}
			resp, err := logUnary(log)(ctx, "req", info, func(context.Context, any) (any, error) { return "resp", tt.err })
			st, _ := status.FromError(err)
			if resp != "resp" || st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Fatalf("interceptor returned (%v, %v); want (resp, %s %q)", resp, err, tt.wantCode, tt.wantMsg)
			}
			if tt.wantLevel == "" {
				if buf.Len() != 0 {
					t.Fatalf("logged %s; want nothing", buf.String())
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			want := map[string]any{
				"level": tt.wantLevel, "msg": "finished call",
				"grpc.service": "carbuild.catalog.v1.CatalogService", "grpc.method": "ListParts",
				"grpc.method_type": "unary", "grpc.code": tt.wantCode.String(), "peer.address": "127.0.0.1:4242",
			}
			if tt.wantError != "" {
				want["grpc.error"] = tt.wantError
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("field %s = %v; want %v (line %s)", k, rec[k], v, buf.String())
				}
			}
			if _, ok := rec["grpc.time_ms"].(float64); !ok {
				t.Errorf("grpc.time_ms missing or not a number: %s", buf.String())
			}
			if _, ok := rec["grpc.error"]; ok && tt.wantError == "" {
				t.Errorf("grpc.error present on a successful call: %s", buf.String())
			}
		})
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestLogStreamKinds(t *testing.T) {
	tests := []struct {
		client, server bool
		want           string
	}{
		{server: true, want: "server_stream"},
		{client: true, want: "client_stream"},
		{client: true, server: true, want: "bidi_stream"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		info := &grpc.StreamServerInfo{FullMethod: "/carbuild.catalog.v1.CatalogService/WatchRevision", IsClientStream: tt.client, IsServerStream: tt.server}
		err := logStream(log)(nil, fakeStream{ctx: context.Background()}, info, func(any, grpc.ServerStream) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", buf.String(), err)
		}
		if rec["grpc.method_type"] != tt.want || rec["grpc.method"] != "WatchRevision" {
			t.Errorf("client=%v server=%v: logged %s; want method_type %s", tt.client, tt.server, buf.String(), tt.want)
		}
	}
}

func TestSplitMethod(t *testing.T) {
	tests := []struct{ in, service, method string }{
		{"/carbuild.pricing.v1.PricingService/PlaceOrder", "carbuild.pricing.v1.PricingService", "PlaceOrder"},
		{"/grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check"},
		{"NoSlash", "unknown", "NoSlash"},
	}
	for _, tt := range tests {
		if s, m := splitMethod(tt.in); s != tt.service || m != tt.method {
			t.Errorf("splitMethod(%q) = %q, %q; want %q, %q", tt.in, s, m, tt.service, tt.method)
		}
	}
}
