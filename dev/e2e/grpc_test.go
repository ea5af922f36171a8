package e2e

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
)

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCatalogGRPC(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	conn := dial(t, sys.Addrs.Catalog)
	v1 := catalogv1.NewCatalogServiceClient(conn)

	cars, err := v1.ListCars(ctx, &catalogv1.ListCarsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cars.GetCars()) != 3 {
		t.Errorf("ListCars = %v", cars)
	}
	parts, err := v1.ListParts(ctx, &catalogv1.ListPartsRequest{CarId: "fusca", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := &catalogv1.Part{Id: "1", CarId: "fusca", Name: "Chassi", Category: catalogv1.PartCategory_PART_CATEGORY_CHASSIS,
		Price: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 500000}}
	if diff := cmp.Diff(want, parts.GetParts()[0], protocmp.Transform()); diff != "" {
		t.Errorf("first fusca part (-want +got):\n%s", diff)
	}
	if parts.GetNextPageToken() == "" {
		t.Error("no next page token after 2 of 6 parts")
	}
	batch, err := v1.BatchGetParts(ctx, &catalogv1.BatchGetPartsRequest{Ids: []string{"20"}})
	if err != nil || batch.GetParts()[0].GetName() != "Sistema Híbrido" || batch.GetParts()[0].GetPrice().GetMinorUnits() != 200000 {
		t.Errorf("BatchGetParts(20) = %v, %v", batch, err)
	}
	_, err = v1.ListParts(ctx, &catalogv1.ListPartsRequest{CarId: "gol"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("ListParts(gol) = %v, want NotFound", err)
	}

	compat := catalogopb.NewCatalogoServiceClient(conn)
	pecas, err := compat.GetPecas(ctx, &catalogopb.Carro{Modelo: "Fusca", Ano: 2014})
	if err != nil {
		t.Fatal(err)
	}
	// By name, as the earlier system's ORDER BY nome answered: Capô, Chassi, ...
	wantPeca := &commonpb.Peca{Id: "1", Nome: "Chassi", Valor: 5000}
	if len(pecas.GetPecas()) != 6 || !cmp.Equal(wantPeca, pecas.GetPecas()[1], protocmp.Transform()) {
		t.Errorf("GetPecas(Fusca) = %v", pecas)
	}
	if _, err := compat.GetPecas(ctx, &catalogopb.Carro{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetPecas(empty) = %v, want InvalidArgument", err)
	}
}

func TestPricingGRPC(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	conn := dial(t, sys.Addrs.Pricing)
	v1 := pricingv1.NewPricingServiceClient(conn)

	q, err := v1.CreateQuote(ctx, &pricingv1.CreateQuoteRequest{Items: []*pricingv1.LineItem{{PartId: "13", Quantity: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if q.GetSubtotal().GetMinorUnits() != 90000 || q.GetShipping().GetMinorUnits() != 4500 || q.GetTotal().GetMinorUnits() != 94500 {
		t.Errorf("CreateQuote = %v", q)
	}
	order, err := v1.PlaceOrder(ctx, &pricingv1.PlaceOrderRequest{
		IdempotencyKey: "e2e-grpc-order-1",
		Items:          []*pricingv1.LineItem{{PartId: "13", Quantity: 3}},
		ExpectedTotal:  q.GetTotal(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Anonymous: read back with the receipt, which only PlaceOrder answers.
	rctx := metadata.AppendToOutgoingContext(ctx, "order-receipt", order.GetReceiptToken())
	got, err := v1.GetOrder(rctx, &pricingv1.GetOrderRequest{OrderId: order.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(order, got, protocmp.Transform(), protocmp.IgnoreFields(&pricingv1.Order{}, "receipt_token")); diff != "" {
		t.Errorf("GetOrder differs from PlaceOrder (-placed +got):\n%s", diff)
	}
	_, err = v1.PlaceOrder(ctx, &pricingv1.PlaceOrderRequest{IdempotencyKey: "e2e-grpc-order-2", Items: []*pricingv1.LineItem{{PartId: "13", Quantity: 3}},
		ExpectedTotal: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 1}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("PlaceOrder with a stale total = %v, want FailedPrecondition", err)
	}

	compat := pricingpb.NewOrcamentoServiceClient(conn)
	itens := []*pricingpb.Item{{Peca: &commonpb.Peca{Id: "7", Nome: "Chassi", Valor: 1}, Quantidade: 1}}
	preco, err := compat.Calcular(ctx, &pricingpb.OrcamentoRequest{Itens: itens})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&pricingpb.Preco{Preco: 8000, Frete: 20, Total: 8020}, preco, protocmp.Transform()); diff != "" {
		t.Errorf("Calcular (-want +got):\n%s", diff)
	}
	mctx := metadata.AppendToOutgoingContext(ctx, "idempotency-key", "e2e-grpc-compat-1")
	compra, err := compat.RealizarCompra(mctx, &pricingpb.CompraRequest{Itens: itens, ValorTotal: 8020})
	if err != nil {
		t.Fatal(err)
	}
	if compra.GetStatus() != "CONFIRMADO" || compra.GetValorTotal() != 8020 || compra.GetFrete() != 20 || compra.GetItensComprados()[0].GetPeca().GetValor() != 8000 {
		t.Errorf("RealizarCompra = %v", compra)
	}
	again, err := compat.RealizarCompra(mctx, &pricingpb.CompraRequest{Itens: itens, ValorTotal: 8020})
	if err != nil || again.GetPedidoId() != compra.GetPedidoId() {
		t.Errorf("retry with the same key = %v, %v; want order %s", again, err, compra.GetPedidoId())
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr     string
		services []string
	}{
		{sys.Addrs.Catalog, []string{"carbuild.catalog.v1.CatalogService", "catalogo.CatalogoService", "grpc.health.v1.Health"}},
		{sys.Addrs.Pricing, []string{"carbuild.pricing.v1.PricingService", "pricing.OrcamentoService", "grpc.health.v1.Health"}},
	} {
		ctx := ctxT(t)
		conn := dial(t, tc.addr)
		h := healthpb.NewHealthClient(conn)
		for _, svc := range append([]string{"", "liveness"}, tc.services[:2]...) {
			resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("%s health %q = %v, %v", tc.addr, svc, resp, err)
			}
		}
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		if _, err := stream.Recv(); err != io.EOF && err != nil {
			t.Logf("reflection stream close: %v", err)
		}
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		for _, want := range tc.services {
			if !slices.Contains(names, want) {
				t.Errorf("%s reflection lists %v, missing %s", tc.addr, names, want)
			}
		}
	}
}

// countOrders counts orders matching a WHERE clause in the stack's database.
func countOrders(t *testing.T, where string, arg any) int {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders.orders WHERE "+where, arg).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func timeParse(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }
