package server

import (
	"context"

	"google.golang.org/grpc/metadata"
)

// IdempotencyKeyHeader is the metadata key (from the HTTP Idempotency-Key
// header, forwarded by the gateway) the compat API reads a key from.
const IdempotencyKeyHeader = "idempotency-key"

func idempotencyKeyFromMetadata(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, IdempotencyKeyHeader); len(v) > 0 {
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
