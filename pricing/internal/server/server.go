// Package server exposes pricing over gRPC: the canonical
// carbuild.pricing.v1.PricingService and the seed-compatible
// pricing.OrcamentoService, thin adapters over pricing.Service. Errors
// (package errs) return as they are: the shared server interceptor chain
// turns them into gRPC statuses. The compat adapter is the only code that
// converts reais to and from centavos.
package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carbuild/carbuild/pricing/internal/money"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/errs"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/mdkey"
	"github.com/carbuild/carbuild/shared/partid"
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
		return nil, err
	}
	q, err := s.svc.Quote(ctx, items)
	if err != nil {
		return nil, err
	}
	return quoteToProto(q), nil
}

// PlaceOrder places an order idempotently.
func (s *V1) PlaceOrder(ctx context.Context, req *pricingv1.PlaceOrderRequest) (*pricingv1.Order, error) {
	items, err := itemsFromV1(req.GetItems())
	if err != nil {
		return nil, err
	}
	if req.GetExpectedTotal() == nil {
		return nil, errs.New(errs.InvalidArgument, "expected_total is required: place the total you were quoted")
	}
	o, _, err := s.svc.PlaceOrder(ctx, pricing.PlaceOrderRequest{
		Customer:       customer(ctx),
		IdempotencyKey: req.GetIdempotencyKey(),
		Items:          items,
		ExpectedTotal:  req.GetExpectedTotal().GetMinorUnits(),
		Currency:       req.GetExpectedTotal().GetCurrencyCode(),
	})
	if err != nil {
		return nil, err
	}
	return orderToProto(o), nil
}

// GetOrder returns one of the caller's orders, or an anonymous order whose
// receipt token is in the "order-receipt" metadata.
func (s *V1) GetOrder(ctx context.Context, req *pricingv1.GetOrderRequest) (*pricingv1.Order, error) {
	o, err := s.svc.GetOrder(ctx, req.GetOrderId(), customer(ctx), metadataValue(ctx, mdkey.OrderReceipt))
	if err != nil {
		return nil, err
	}
	return orderToProto(o), nil
}

// ListOrders returns the caller's orders, newest first.
func (s *V1) ListOrders(ctx context.Context, req *pricingv1.ListOrdersRequest) (*pricingv1.ListOrdersResponse, error) {
	orders, next, err := s.svc.ListOrders(ctx, customer(ctx), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &pricingv1.ListOrdersResponse{Orders: make([]*pricingv1.Order, len(orders)), NextPageToken: next}
	for i, o := range orders {
		resp.Orders[i] = orderToProto(o)
	}
	return resp, nil
}

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
		return nil, err
	}
	q, err := s.svc.Quote(ctx, items)
	if err != nil {
		return nil, err
	}
	return &pricingpb.Preco{Preco: money.ToReais(q.Subtotal), Frete: money.ToReais(q.Shipping), Total: money.ToReais(q.Total)}, nil
}

// RealizarCompra places an order. The earlier API has no idempotency key, so
// each call is a new order unless the gateway passed one along
// (Idempotency-Key header → metadata).
func (s *Compat) RealizarCompra(ctx context.Context, req *pricingpb.CompraRequest) (*pricingpb.CompraResponse, error) {
	items, err := itemsFromCompat(req.GetItens())
	if err != nil {
		return nil, err
	}
	expected, err := money.FromReais(req.GetValorTotal())
	if err != nil {
		return nil, errs.New(errs.InvalidArgument, "valor_total: %v", err)
	}
	key := idempotencyKeyFromMetadata(ctx)
	if key == "" {
		if key, err = pricing.NewIdempotencyKey(); err != nil {
			return nil, err
		}
	}
	o, _, err := s.svc.PlaceOrder(ctx, pricing.PlaceOrderRequest{
		Customer: customer(ctx), IdempotencyKey: key, Items: items, ExpectedTotal: expected, Currency: money.BRL,
	})
	if err != nil {
		return nil, err
	}
	// The earlier response has no field for it: an anonymous order's receipt
	// travels as header metadata (the Order-Receipt HTTP header).
	if o.ReceiptToken != "" {
		_ = grpc.SetHeader(ctx, metadata.Pairs(mdkey.OrderReceipt, o.ReceiptToken))
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
			Peca:       &commonpb.Peca{Id: partid.Format(l.Part.ID), Nome: l.Part.Name, Valor: money.ToReais(l.Part.UnitPrice)},
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
		return nil, errs.New(errs.InvalidArgument, "at most %d items per request, got %d", maxItems, len(in))
	}
	out := make([]quote.Item, len(in))
	for i, it := range in {
		id, err := partid.Parse(it.GetPartId())
		if err != nil {
			return nil, err
		}
		out[i] = quote.Item{PartID: id, Quantity: int(it.GetQuantity())}
	}
	return out, nil
}

func itemsFromCompat(in []*pricingpb.Item) ([]quote.Item, error) {
	if len(in) > maxItems {
		return nil, errs.New(errs.InvalidArgument, "at most %d items per request, got %d", maxItems, len(in))
	}
	out := make([]quote.Item, len(in))
	for i, it := range in {
		if it.GetPeca() == nil {
			return nil, errs.New(errs.InvalidArgument, "item %d has no peca", i+1)
		}
		id, err := partid.Parse(it.GetPeca().GetId())
		if err != nil {
			return nil, err
		}
		out[i] = quote.Item{PartID: id, Quantity: int(it.GetQuantidade())}
	}
	return out, nil
}

func moneyToProto(minor int64, currency string) *moneyv1.Money {
	return &moneyv1.Money{CurrencyCode: currency, MinorUnits: minor}
}

func linesToProto(lines []quote.Line, currency string) []*pricingv1.QuoteLine {
	out := make([]*pricingv1.QuoteLine, len(lines))
	for i, l := range lines {
		out[i] = &pricingv1.QuoteLine{
			PartId:    partid.Format(l.Part.ID),
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
