package server

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/carbuild/carbuild/shared/mdkey"
)

func idempotencyKeyFromMetadata(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, mdkey.IdempotencyKey); len(v) > 0 {
		return v[0]
	}
	return ""
}

// metadataValue returns the first value of key in the incoming metadata.
func metadataValue(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}
