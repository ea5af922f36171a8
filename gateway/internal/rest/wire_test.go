package rest

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	"github.com/carbuild/carbuild/shared/grpctest"
)

type bigAnswers struct {
	catalogv1.UnimplementedCatalogServiceServer
	catalogopb.UnimplementedCatalogoServiceServer
}

var (
	page  = &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{{Id: "7", CarId: "civic", Name: "Chassi", Price: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 800000}}}, NextPageToken: "t"}
	pecas = &catalogopb.PecasResponse{Pecas: []*commonpb.Peca{{Id: "7", Nome: "Chassi", Valor: 8000}}}
)

func (bigAnswers) ListParts(context.Context, *catalogv1.ListPartsRequest) (*catalogv1.ListPartsResponse, error) {
	return page, nil
}

func (bigAnswers) GetPecas(context.Context, *catalogopb.Carro) (*catalogopb.PecasResponse, error) {
	return pecas, nil
}

// TestCatalogAnswersKeptAsWire checks that the clients the routes use take
// the big answers as the catalog's bytes (pbjson.KeepWire), untouched.
func TestCatalogAnswersKeptAsWire(t *testing.T) {
	_, cc := grpctest.Serve(t, func(s *grpc.Server) {
		catalogv1.RegisterCatalogServiceServer(s, bigAnswers{})
		catalogopb.RegisterCatalogoServiceServer(s, bigAnswers{})
	})

	gotPage, err := wireCatalog{catalogv1.NewCatalogServiceClient(cc)}.ListParts(context.Background(), &catalogv1.ListPartsRequest{CarId: "civic"})
	if err != nil {
		t.Fatal(err)
	}
	gotPecas, err := wireCatalogo{catalogopb.NewCatalogoServiceClient(cc)}.GetPecas(context.Background(), &catalogopb.Carro{Modelo: "Civic"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, sent proto.Message }{{gotPage, page}, {gotPecas, pecas}} {
		want, _ := proto.Marshal(c.sent)
		decoded := c.sent.ProtoReflect().Type().New().Interface()
		if err := proto.Unmarshal(c.got.ProtoReflect().GetUnknown(), decoded); err != nil || !proto.Equal(decoded, c.sent) {
			t.Errorf("%T: kept bytes decode to %v (%v), the catalog sent %v", c.got, decoded, err, c.sent)
		}
		if n := len(c.got.ProtoReflect().GetUnknown()); n != len(want) {
			t.Errorf("%T: %d bytes kept, the catalog sent %d", c.got, n, len(want))
		}
	}
	if len(gotPage.Parts) != 0 || len(gotPecas.Pecas) != 0 {
		t.Errorf("answers decoded into structs: %d parts, %d pecas", len(gotPage.Parts), len(gotPecas.Pecas))
	}
}
