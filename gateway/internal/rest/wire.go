package rest

import (
	"context"

	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/gateway/internal/pbjson"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
)

// wireCatalog and wireCatalogo take the catalog's big answers (a page of
// parts, /get-pecas) as its protobuf bytes, which the marshaler (every
// route's, muxOptions) writes as JSON without decoding them into Go
// structs first (pbjson.KeepWire).
type wireCatalog struct{ catalogv1.CatalogServiceClient }

func (c wireCatalog) ListParts(ctx context.Context, in *catalogv1.ListPartsRequest, opts ...grpc.CallOption) (*catalogv1.ListPartsResponse, error) {
	return c.CatalogServiceClient.ListParts(ctx, in, append(opts, pbjson.KeepWire())...)
}

type wireCatalogo struct {
	catalogopb.CatalogoServiceClient
}

func (c wireCatalogo) GetPecas(ctx context.Context, in *catalogopb.Carro, opts ...grpc.CallOption) (*catalogopb.PecasResponse, error) {
	return c.CatalogoServiceClient.GetPecas(ctx, in, append(opts, pbjson.KeepWire())...)
}
