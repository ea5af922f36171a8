package fault

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/dev/stack"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// TestHardening checks, on one running stack: security headers on every
// kind of gateway answer; the body limit; gRPC message size limits on both
// services; that every HTTP server drops a client that never finishes its
// headers (slowloris); that order ids are random v4 UUIDs; and that the
// database password is masked in the start-up logs.
func TestHardening(t *testing.T) {
	dsn := newDatabase(t, adminURL(t))
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	secret, has := u.User.Password()
	if !has { // a server that trusts loopback never checks it: it only has to stay out of the logs
		secret = "pw-" + randomKey(6)
		u.User = url.UserPassword(u.User.Username(), secret)
	}
	s := startStack(t, stack.Config{DatabaseURL: u.String()})
	client := &http.Client{Timeout: 10 * time.Second}

	t.Run("security headers", func(t *testing.T) {
		for _, c := range []call{
			{method: "GET", path: "/v1/cars"},
			{method: "GET", path: "/v1/cars/gol/parts"},
			{method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"x"}]}`},
			{method: "POST", path: "/get-pecas", body: `{"modelo":"Civic"}`},
			{method: "GET", path: "/"},
			{method: "GET", path: "/healthz"},
			{method: "GET", path: "/nope"},
		} {
			req, _ := http.NewRequest(c.method, s.GatewayURL+c.path, strings.NewReader(c.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
			if c.path == "/" {
				want["Content-Security-Policy"] = "default-src 'none'"
			}
			for k, v := range want {
				if got := resp.Header.Get(k); !strings.HasPrefix(got, v) {
					t.Errorf("%s %s (%d): %s = %q, want %q", c.method, c.path, resp.StatusCode, k, got, v)
				}
			}
			if ct := resp.Header.Get("Content-Type"); ct == "" {
				t.Errorf("%s %s: no Content-Type", c.method, c.path)
			}
		}
	})

	t.Run("body limit", func(t *testing.T) {
		big := `{"items":[` + strings.Repeat(`{"partId":"1","quantity":1},`, 4000) + `{"partId":"1","quantity":1}]}`
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(big)
			if chunked { // no Content-Length: the limit must hold while reading
				body = io.MultiReader(strings.NewReader(big))
			}
			resp, err := client.Post(s.GatewayURL+"/v1/quotes", "application/json", body)
			if err != nil {
				t.Fatal(err)
			}
			b := readAll(resp)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || jsonField(b, "status") != "REQUEST_TOO_LARGE" {
				t.Errorf("%d-byte body (chunked %v): %d %s, want 413", len(big), chunked, resp.StatusCode, b)
			}
		}
	})

	t.Run("grpc message limits", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ids := make([]string, 300_000) // about 2 MiB on the wire, above the 1 MiB limit
		for i := range ids {
			ids[i] = "1234"
		}
		cat := dialGRPC(t, s.Addrs.Catalog)
		_, err := catalogv1.NewCatalogServiceClient(cat).BatchGetParts(ctx, &catalogv1.BatchGetPartsRequest{Ids: ids})
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("catalog, 2 MiB request: %v, want RESOURCE_EXHAUSTED", err)
		}
		items := make([]*pricingv1.LineItem, 100_000)
		for i := range items {
			items[i] = &pricingv1.LineItem{PartId: "12345678", Quantity: 1}
		}
		pr := dialGRPC(t, s.Addrs.Pricing)
		_, err = pricingv1.NewPricingServiceClient(pr).CreateQuote(ctx, &pricingv1.CreateQuoteRequest{Items: items})
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("pricing, 1.5 MiB request: %v, want RESOURCE_EXHAUSTED", err)
		}
		// Both still serve afterwards.
		if _, err := catalogv1.NewCatalogServiceClient(cat).ListCars(ctx, &catalogv1.ListCarsRequest{}); err != nil {
			t.Errorf("catalog after the large message: %v", err)
		}
	})

	t.Run("slow headers", func(t *testing.T) {
		// Every HTTP server has ReadHeaderTimeout 5 s: a client that sends
		// half a request line and waits is dropped, not kept forever.
		var wg sync.WaitGroup
		for _, addr := range []string{s.Addrs.Gateway, s.Addrs.CatalogMetrics, s.Addrs.PricingMetrics} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				start := time.Now()
				if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")); err != nil {
					t.Error(err)
					return
				}
				// Our own deadline only detects a server that never closes:
				// the figure is logged, the property is that the server
				// closed the connection (io.Copy ends without an error).
				_ = c.SetReadDeadline(time.Now().Add(loadBound))
				_, err = io.Copy(io.Discard, c) // returns when the server closes
				if d := time.Since(start); err != nil {
					t.Errorf("%s: a client with unfinished headers was kept %s (%v), want it closed by the server's ReadHeaderTimeout (5 s)", addr, d.Round(time.Millisecond), err)
				} else {
					t.Logf("%s: unfinished headers dropped after %s", addr, d.Round(time.Millisecond))
				}
			}()
		}
		wg.Wait()
	})

	t.Run("order ids", func(t *testing.T) {
		seen := map[string]bool{}
		for range 20 {
			resp, err := client.Post(s.GatewayURL+"/v1/orders", "application/json", strings.NewReader(orderCall(randomKey(8)).body))
			if err != nil {
				t.Fatal(err)
			}
			id := jsonField(readAll(resp), "id")
			resp.Body.Close()
			if !uuidV4.MatchString(id) || seen[id] {
				t.Fatalf("order id %q: want a fresh random (v4) UUID", id)
			}
			seen[id] = true
		}
		resp, err := client.Post(s.GatewayURL+"/pagar", "application/json", strings.NewReader(`{"itens":[{"peca":{"id":"13"},"quantidade":1}],"valor_total":320}`))
		if err != nil {
			t.Fatal(err)
		}
		if id := jsonField(readAll(resp), "pedidoId"); !uuidV4.MatchString(id) {
			t.Errorf("/pagar pedidoId %q is not a random (v4) UUID", id)
		}
		resp.Body.Close()
	})

	t.Run("secrets masked", func(t *testing.T) {
		logs := s.Logs()
		if strings.Contains(logs, secret) {
			t.Errorf("the database password appears in the logs")
		}
		for _, name := range []string{"catalog", "pricing"} {
			if !strings.Contains(logs, "["+name+"]") || !strings.Contains(logs, "xxxxx@") {
				t.Errorf("%s: start-up log does not show the masked database URL", name)
			}
		}
	})
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
