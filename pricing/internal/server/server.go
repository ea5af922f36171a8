// Package server exposes pricing over gRPC: the canonical
// carbuild.pricing.v1.PricingService and the seed-compatible
// pricing.OrcamentoService, thin adapters over pricing.Service. It is the one
// place where pricing errors become gRPC status codes, and the compat
// adapter is the only code that converts reais to and from centavos.
package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carbuild/carbuild/pricing/internal/money"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/auth"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
)

// V1 implements carbuild.pricing.v1.PricingService.
type V1 struct {
	pricingv1.UnimplementedPricingServiceServer
	svc *pricing.Service
}

// NewV1 returns the v1 adapter over svc.
func NewV1(svc *pricing.Service) *V1 { return &V1{svc: svc} }

// CreateQuote prices a basket.
func (s *V1) CreateQuote(ctx context.Context, req *pricingv1.CreateQuoteRequest) (*pricingv1.Quote, error) {
	items, err := itemsFromV1(req.GetItems())
	if err != nil {
		return nil, toStatus(err)
	}
	q, err := s.svc.Quote(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	return quoteToProto(q), nil
}

// PlaceOrder places an order idempotently.
func (s *V1) PlaceOrder(ctx context.Context, req *pricingv1.PlaceOrderRequest) (*pricingv1.Order, error) {
	items, err := itemsFromV1(req.GetItems())
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetExpectedTotal() == nil {
		return nil, status.Error(codes.InvalidArgument, "expected_total is required: place the total you were quoted")
	}
	o, _, err := s.svc.PlaceOrder(ctx, pricing.PlaceOrderRequest{
		Customer:       customer(ctx),
		IdempotencyKey: req.GetIdempotencyKey(),
		Items:          items,
		ExpectedTotal:  req.GetExpectedTotal().GetMinorUnits(),
		Currency:       req.GetExpectedTotal().GetCurrencyCode(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return orderToProto(o), nil
}

// GetOrder returns one of the caller's orders, or an anonymous order whose
// receipt token is in the "order-receipt" metadata.
func (s *V1) GetOrder(ctx context.Context, req *pricingv1.GetOrderRequest) (*pricingv1.Order, error) {
	o, err := s.svc.GetOrder(ctx, req.GetOrderId(), customer(ctx), metadataValue(ctx, receiptMetadata))
	if err != nil {
		return nil, toStatus(err)
	}
	return orderToProto(o), nil
}

// ListOrders returns the caller's orders, newest first.
func (s *V1) ListOrders(ctx context.Context, req *pricingv1.ListOrdersRequest) (*pricingv1.ListOrdersResponse, error) {
	orders, next, err := s.svc.ListOrders(ctx, customer(ctx), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pricingv1.ListOrdersResponse{Orders: make([]*pricingv1.Order, len(orders)), NextPageToken: next}
	for i, o := range orders {
		resp.Orders[i] = orderToProto(o)
	}
	return resp, nil
}

// receiptMetadata carries an anonymous order's receipt token, in both
// directions: RealizarCompra answers it as header metadata, GetOrder reads it
// (the gateway maps it to and from the Order-Receipt header).
const receiptMetadata = "order-receipt"

// customer is the verified subject of the call ("" when anonymous); only
// the auth interceptor puts an identity in the context.
func customer(ctx context.Context) string {
	id, _ := auth.FromContext(ctx)
	return id.Subject
}

// Compat implements the earlier system's pricing.OrcamentoService. The price
// a client sends in peca.valor is ignored: the catalog price by peca.id is
// used.
type Compat struct {
	pricingpb.UnimplementedOrcamentoServiceServer
	svc *pricing.Service
}

// NewCompat returns the seed-compatible adapter over svc.
func NewCompat(svc *pricing.Service) *Compat { return &Compat{svc: svc} }

// StatusConfirmado is the earlier system's status of a placed order.
const StatusConfirmado = "CONFIRMADO"

// Calcular quotes a basket: preco (subtotal), frete and total in reais.
func (s *Compat) Calcular(ctx context.Context, req *pricingpb.OrcamentoRequest) (*pricingpb.Preco, error) {
	items, err := itemsFromCompat(req.GetItens())
	if err != nil {
		return nil, toStatus(err)
	}
	q, err := s.svc.Quote(ctx, items)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pricingpb.Preco{Preco: money.ToReais(q.Subtotal), Frete: money.ToReais(q.Shipping), Total: money.ToReais(q.Total)}, nil
}

// RealizarCompra places an order. The earlier API has no idempotency key, so
// each call is a new order unless the gateway passed one along
// (Idempotency-Key header → metadata).
func (s *Compat) RealizarCompra(ctx context.Context, req *pricingpb.CompraRequest) (*pricingpb.CompraResponse, error) {
	items, err := itemsFromCompat(req.GetItens())
	if err != nil {
		return nil, toStatus(err)
	}
	expected, err := money.FromReais(req.GetValorTotal())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "valor_total: %v", err)
	}
	key := idempotencyKeyFromMetadata(ctx)
	if key == "" {
		if key, err = pricing.NewIdempotencyKey(); err != nil {
			return nil, toStatus(err)
		}
	}
	o, _, err := s.svc.PlaceOrder(ctx, pricing.PlaceOrderRequest{
		Customer: customer(ctx), IdempotencyKey: key, Items: items, ExpectedTotal: expected, Currency: money.BRL,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	// The earlier response has no field for it: an anonymous order's receipt
	// travels as header metadata (the Order-Receipt HTTP header).
	if o.ReceiptToken != "" {
		_ = grpc.SetHeader(ctx, metadata.Pairs(receiptMetadata, o.ReceiptToken))
	}
	q := o.Quote
	resp := &pricingpb.CompraResponse{
		PedidoId:       o.ID,
		Status:         StatusConfirmado,
		ValorTotal:     money.ToReais(q.Total),
		DataPedido:     o.CreatedAt.UTC().Format(time.RFC3339),
		ItensComprados: make([]*pricingpb.Item, len(q.Lines)),
		Subtotal:       money.ToReais(q.Subtotal),
		Frete:          money.ToReais(q.Shipping),
	}
	for i, l := range q.Lines {
		resp.ItensComprados[i] = &pricingpb.Item{
			Peca:       &commonpb.Peca{Id: strconv.FormatInt(l.Part.ID, 10), Nome: l.Part.Name, Valor: money.ToReais(l.Part.UnitPrice)},
			Quantidade: int32(l.Quantity),
		}
	}
	return resp, nil
}

// maxItems bounds the items of one request before repeated parts are merged
// (the merged basket is bounded by quote.MaxLines).
const maxItems = 200

func itemsFromV1(in []*pricingv1.LineItem) ([]quote.Item, error) {
	if len(in) > maxItems {
		return nil, fmt.Errorf("%w: at most %d items per request, got %d", pricing.ErrInvalid, maxItems, len(in))
	}
	out := make([]quote.Item, len(in))
	for i, it := range in {
		id, err := parsePartID(it.GetPartId())
		if err != nil {
			return nil, err
		}
		out[i] = quote.Item{PartID: id, Quantity: int(it.GetQuantity())}
	}
	return out, nil
}

func itemsFromCompat(in []*pricingpb.Item) ([]quote.Item, error) {
	if len(in) > maxItems {
		return nil, fmt.Errorf("%w: at most %d items per request, got %d", pricing.ErrInvalid, maxItems, len(in))
	}
	out := make([]quote.Item, len(in))
	for i, it := range in {
		if it.GetPeca() == nil {
			return nil, fmt.Errorf("%w: item %d has no peca", pricing.ErrInvalid, i+1)
		}
		id, err := parsePartID(it.GetPeca().GetId())
		if err != nil {
			return nil, err
		}
		out[i] = quote.Item{PartID: id, Quantity: int(it.GetQuantidade())}
	}
	return out, nil
}

func parsePartID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		if len(s) > 32 {
			s = s[:32] + "…"
		}
		return 0, fmt.Errorf("%w: part id %q must be a positive decimal number", pricing.ErrInvalid, s)
	}
	return id, nil
}

// toStatus maps a pricing error to a gRPC status with the reason a client
// needs; unexpected errors are not leaked.
func toStatus(err error) error {
	switch {
	case errors.Is(err, pricing.ErrInvalid):
		return status.Error(codes.InvalidArgument, reason(err, pricing.ErrInvalid))
	case errors.Is(err, pricing.ErrNotFound):
		return status.Error(codes.NotFound, reason(err, pricing.ErrNotFound)+" not found")
	case errors.Is(err, pricing.ErrPriceChanged):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, pricing.ErrConflict):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, pricing.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, reason(err, pricing.ErrUnauthenticated))
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, pricing.ErrUnavailable):
		return status.Error(codes.Unavailable, "pricing temporarily unavailable; retry")
	default:
		return status.Error(codes.Internal, "internal error")
	}
}

func moneyToProto(minor int64, currency string) *moneyv1.Money {
	return &moneyv1.Money{CurrencyCode: currency, MinorUnits: minor}
}

func linesToProto(lines []quote.Line, currency string) []*pricingv1.QuoteLine {
	out := make([]*pricingv1.QuoteLine, len(lines))
	for i, l := range lines {
		out[i] = &pricingv1.QuoteLine{
			PartId:    strconv.FormatInt(l.Part.ID, 10),
			Name:      l.Part.Name,
			Quantity:  int32(l.Quantity),
			UnitPrice: moneyToProto(l.Part.UnitPrice, currency),
			LineTotal: moneyToProto(l.LineTotal, currency),
		}
	}
	return out
}

func quoteToProto(q quote.Quote) *pricingv1.Quote {
	return &pricingv1.Quote{
		Lines:        linesToProto(q.Lines, q.Currency),
		Subtotal:     moneyToProto(q.Subtotal, q.Currency),
		Shipping:     moneyToProto(q.Shipping, q.Currency),
		Total:        moneyToProto(q.Total, q.Currency),
		FreeShipping: q.FreeShipping,
	}
}

func orderToProto(o pricing.Order) *pricingv1.Order {
	q := o.Quote
	st := pricingv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
	if o.Status == pricing.StatusConfirmed {
		st = pricingv1.OrderStatus_ORDER_STATUS_CONFIRMED
	}
	return &pricingv1.Order{
		Id:           o.ID,
		Status:       st,
		Lines:        linesToProto(q.Lines, q.Currency),
		Subtotal:     moneyToProto(q.Subtotal, q.Currency),
		Shipping:     moneyToProto(q.Shipping, q.Currency),
		Total:        moneyToProto(q.Total, q.Currency),
		CreateTime:   timestamppb.New(o.CreatedAt),
		ReceiptToken: o.ReceiptToken,
	}
}

// reason is an error's message without its leading sentinel ("invalid
// argument: x" → "x"): the status code already says what kind it is.
func reason(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}
