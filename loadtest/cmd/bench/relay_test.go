package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// TestMain lets this test binary be the relay process, as the bench's binary
// is: startRelay runs os.Executable() with relayEnv set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(relayEnv); spec != "" {
		if err := serveRelay(spec); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type onePartPricing struct {
	pricingv1.UnimplementedPricingServiceServer
}

func (onePartPricing) CreateQuote(_ context.Context, in *pricingv1.CreateQuoteRequest) (*pricingv1.Quote, error) {
	return &pricingv1.Quote{Lines: []*pricingv1.QuoteLine{{PartId: in.GetItems()[0].GetPartId(), Quantity: 1}}}, nil
}

// TestRelayProcess starts the relay as the bench does, in a process of its
// own in front of a pricing server on loopback, and calls it.
func TestRelayProcess(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pricingv1.RegisterPricingServiceServer(srv, onePartPricing{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	parts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"parts":[{"id":"7"}]}`)
	}))
	defer parts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := startRelay(ctx, lis.Addr().String(), parts.URL+"/v1/cars/civic/parts")
	if err != nil {
		t.Fatal(err)
	}
	if p.pid <= 0 || p.pid == os.Getpid() {
		t.Errorf("relay pid %d: want a process of its own", p.pid)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/v1/cars/civic/parts?year=2023", "", `{"parts":[{"id":"7"}]}`},
		{"POST", "/v1/quotes", `{"items":[{"partId":"42","quantity":1}]}`, `"42"`},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, p.url+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s %s: %s %s, want 200 with %s", tc.method, tc.path, resp.Status, body, tc.want)
		}
	}
	if err := p.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
