package rest

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	"github.com/carbuild/carbuild/shared/mdkey"
)

func TestWithHeaderKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string // Idempotency-Key values as forwarded
		body    string   // idempotencyKey in the body
		want    string
		wantErr codes.Code
	}{
		{name: "neither", want: ""},
		{name: "body only", body: "body-key-0001", want: "body-key-0001"},
		{name: "header only", headers: []string{"hdr-key-0001"}, want: "hdr-key-0001"},
		{name: "both equal", headers: []string{"same-key-0001"}, body: "same-key-0001", want: "same-key-0001"},
		{name: "both differ", headers: []string{"hdr-key-0001"}, body: "body-key-0001", wantErr: codes.InvalidArgument},
		{name: "header twice, equal", headers: []string{"hdr-key-0001", "hdr-key-0001"}, want: "hdr-key-0001"},
		{name: "header twice, different", headers: []string{"hdr-key-0001", "hdr-key-0002"}, wantErr: codes.InvalidArgument},
		// Length and content rules stay pricing's: an empty header is passed on as it is.
		{name: "empty header", headers: []string{""}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			for _, h := range tt.headers {
				ctx = metadata.AppendToOutgoingContext(ctx, mdkey.IdempotencyKey, h)
			}
			in := &pricingv1.PlaceOrderRequest{IdempotencyKey: tt.body}
			got, err := withHeaderKey(ctx, in)
			if code := status.Code(err); code != tt.wantErr {
				t.Fatalf("withHeaderKey error = %v, want code %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.GetIdempotencyKey() != tt.want {
				t.Errorf("key = %q, want %q", got.GetIdempotencyKey(), tt.want)
			}
			if in.GetIdempotencyKey() != tt.body {
				t.Errorf("the caller's request was changed: key %q, want %q", in.GetIdempotencyKey(), tt.body)
			}
		})
	}
}
