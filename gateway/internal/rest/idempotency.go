package rest

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/carbuild/carbuild/shared/errs"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	"github.com/carbuild/carbuild/shared/mdkey"
)

// HeaderIdempotencyKey is the HTTP header a client may send an order's
// idempotency key in; incomingHeaders forwards it as mdkey.IdempotencyKey.
const HeaderIdempotencyKey = "Idempotency-Key"

// headerKeyPricing lets POST /v1/orders take its idempotency key from the
// Idempotency-Key header, the way HTTP clients and proxies usually send it:
// the header fills the request's idempotencyKey when the body has none. When
// both are given they must be equal; two different keys are refused (400)
// rather than one chosen, because either choice would turn some client's
// retry into a second order or a different order into a replay.
type headerKeyPricing struct {
	pricingv1.PricingServiceClient
}

func (c headerKeyPricing) PlaceOrder(ctx context.Context, in *pricingv1.PlaceOrderRequest, opts ...grpc.CallOption) (*pricingv1.Order, error) {
	req, err := withHeaderKey(ctx, in)
	if err != nil {
		return nil, err
	}
	return c.PricingServiceClient.PlaceOrder(ctx, req, opts...)
}

// withHeaderKey returns in with the Idempotency-Key header's value as its key
// (a copy: the caller's message is not changed), or a status error when the
// header and the body disagree.
func withHeaderKey(ctx context.Context, in *pricingv1.PlaceOrderRequest) (*pricingv1.PlaceOrderRequest, error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	keys := md.Get(mdkey.IdempotencyKey)
	if len(keys) == 0 {
		return in, nil
	}
	header := keys[0]
	for _, k := range keys[1:] {
		if k != header {
			return nil, status.Error(codes.InvalidArgument, "the Idempotency-Key header is given more than once with different values")
		}
	}
	switch body := in.GetIdempotencyKey(); {
	case body == header:
		return in, nil
	case body != "":
		return nil, status.Errorf(codes.InvalidArgument, "the Idempotency-Key header %q and the body's idempotencyKey %q differ; send one, or the same in both", errs.Truncate(header), errs.Truncate(body))
	}
	req := proto.Clone(in).(*pricingv1.PlaceOrderRequest)
	req.IdempotencyKey = header
	return req, nil
}
