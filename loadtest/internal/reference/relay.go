package reference

import (
	"context"
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// RelayTimeout is the relay's deadline for a pricing call, the gateway's
// default backend timeout.
const RelayTimeout = 5 * time.Second

// Relay is the floor under the gateway for the mixed journey: net/http in
// front of a plain grpc-go client of pricing, with grpc-gateway's default
// JSON (protojson, unpopulated fields emitted, as the gateway's answers) and
// nothing else: no grpc-gateway routing, no middleware, no metrics, no
// authentication, no admission control, no cache to fill. GET /health and
// GET /v1/cars/{id}/parts are answered from memory (parts is the page the
// journey reads, fetched once, as a cache hit); POST /v1/quotes and POST
// /v1/orders go to pricing, one unary call each. Its CPU per request, beside
// the gateway's in the same run, is what the two libraries every gateway of
// this design uses (net/http, grpc-go) cost, whatever the gateway adds.
func Relay(pricing pricingv1.PricingServiceClient, parts []byte) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", healthy)
	mux.Handle("GET /v1/cars/{id}/parts", jsonBytes(parts))
	mux.Handle("POST /v1/quotes", relay(func(ctx context.Context, body []byte) (proto.Message, error) {
		in := &pricingv1.CreateQuoteRequest{}
		if err := protojson.Unmarshal(body, in); err != nil {
			return nil, err
		}
		return pricing.CreateQuote(ctx, in)
	}))
	mux.Handle("POST /v1/orders", relay(func(ctx context.Context, body []byte) (proto.Message, error) {
		in := &pricingv1.PlaceOrderRequest{}
		if err := protojson.Unmarshal(body, in); err != nil {
			return nil, err
		}
		return pricing.PlaceOrder(ctx, in)
	}))
	return mux
}

// maxRelayBody bounds a request body, as the gateway's MAX_BODY_BYTES does.
const maxRelayBody = 1 << 20

var relayJSON = protojson.MarshalOptions{EmitUnpopulated: true}

// relay answers a POST with call's answer as JSON: 400 when the body does
// not decode, 502 with the gRPC status when the call fails.
func relay(call func(context.Context, []byte) (proto.Message, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRelayBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), RelayTimeout)
		defer cancel()
		resp, err := call(ctx, body)
		if err != nil {
			code := http.StatusBadGateway
			if _, ok := status.FromError(err); !ok {
				code = http.StatusBadRequest // the body did not decode
			}
			http.Error(w, err.Error(), code)
			return
		}
		out, err := relayJSON.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}
