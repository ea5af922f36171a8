package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

func TestQueryParser(t *testing.T) {
	tests := []struct{ query, want string }{
		{"pageSize=abc", `query parameter pageSize: "abc" is not a number`},
		{"page_size=abc", `query parameter page_size: "abc" is not a number`},
		{"year=99999999999", `query parameter year: 99999999999 is out of range`},
		{"year=", `query parameter year: "" is not a number`},
		{"year=2020&pageSize=5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			err = (&queryParser{}).Parse(&catalogv1.ListPartsRequest{}, values, utilities.NewDoubleArray(nil))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Parse(%q) error = %q; want %q", tt.query, got, tt.want)
			}
		})
	}
}

// TestErrorHandlerLogs: a call a backend failed is logged with its route,
// gRPC code, the full message (the client gets a generic one for
// UNAVAILABLE and DEADLINE_EXCEEDED) and the time taken, at the level the
// backends use for the same code; what the client caused is logged at debug.
func TestErrorHandlerLogs(t *testing.T) {
	tests := []struct {
		code      codes.Code
		wantLevel slog.Level
		wantHTTP  int
	}{
		{codes.DeadlineExceeded, slog.LevelWarn, http.StatusGatewayTimeout},
		{codes.Unavailable, slog.LevelWarn, http.StatusServiceUnavailable},
		{codes.ResourceExhausted, slog.LevelWarn, http.StatusTooManyRequests},
		{codes.Internal, slog.LevelError, http.StatusInternalServerError},
		{codes.Unknown, slog.LevelError, http.StatusInternalServerError},
		{codes.InvalidArgument, slog.LevelDebug, http.StatusBadRequest},
		{codes.FailedPrecondition, slog.LevelDebug, http.StatusBadRequest},
		{codes.NotFound, slog.LevelDebug, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			var logged bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
			label := &routeLabel{start: time.Now().Add(-1500 * time.Millisecond)}
			route := "/v1/orders"
			label.v.Store(&route)
			ctx := context.WithValue(context.Background(), routeKey{}, label)
			r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/orders", nil)
			w := httptest.NewRecorder()
			errorHandler(log, false)(ctx, nil, nil, w, r, status.Error(tt.code, "pricing: catalog: context deadline exceeded"))
			if w.Code != tt.wantHTTP {
				t.Errorf("answer %d; want %d", w.Code, tt.wantHTTP)
			}
			var rec struct {
				Level, Msg string
				Method     string  `json:"http.method"`
				Route      string  `json:"http.route"`
				Code       string  `json:"grpc.code"`
				Error      string  `json:"grpc.error"`
				TimeMS     float64 `json:"time_ms"`
			}
			if err := json.Unmarshal(logged.Bytes(), &rec); err != nil {
				t.Fatalf("log %q: %v", logged.String(), err)
			}
			if rec.Level != tt.wantLevel.String() || rec.Msg != "request failed" || rec.Method != "POST" || rec.Route != route ||
				rec.Code != tt.code.String() || rec.Error != "pricing: catalog: context deadline exceeded" || rec.TimeMS < 1500 {
				t.Errorf("logged %s; want level %s, route %s, code %s, the full message and time_ms ≥ 1500", logged.String(), tt.wantLevel, route, tt.code)
			}
		})
	}
}

// TestErrorHandlerQuiet: with no logger, or the level off, nothing is logged
// and the answer is the same.
func TestErrorHandlerQuiet(t *testing.T) {
	var logged bytes.Buffer
	for _, log := range []*slog.Logger{nil, slog.New(slog.NewJSONHandler(&logged, nil))} {
		r := httptest.NewRequest(http.MethodGet, "/v1/cars", nil)
		w := httptest.NewRecorder()
		errorHandler(log, false)(r.Context(), nil, nil, w, r, status.Error(codes.NotFound, "car 7 not found"))
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "car 7 not found") {
			t.Errorf("answer %d %s; want 404 with the message", w.Code, w.Body)
		}
	}
	if logged.Len() != 0 {
		t.Errorf("logged %q at info; want nothing for a client's error", logged.String())
	}
}
