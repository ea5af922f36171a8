// Package mdkey names the gRPC metadata keys the gateway and the services
// agree on, so each is spelled once.
package mdkey

const (
	// IdempotencyKey carries the HTTP Idempotency-Key header to pricing: the
	// seed-compatible RealizarCompra reads its key from it.
	IdempotencyKey = "idempotency-key"
	// OrderReceipt carries an anonymous order's receipt token, both ways:
	// RealizarCompra answers it as header metadata, GetOrder reads it (the
	// gateway maps it to and from the Order-Receipt HTTP header).
	OrderReceipt = "order-receipt"
)
