// Package server exposes the catalog over gRPC: the canonical
// carbuild.catalog.v1.CatalogService and the seed-compatible
// catalogo.CatalogoService, both thin adapters over the same catalog.Service.
// Domain errors (package errs) return as they are: the shared server
// interceptor chain turns them into gRPC statuses.
//
// Every read method answers the catalog revision in the "catalog-revision"
// header (RevisionHeader) and CatalogService.WatchRevision streams it, so
// caches in front of the catalog can tell which state an answer reflects.
package server

import (
	"context"
	"errors"
	"strings"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/shared/errs"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	"github.com/carbuild/carbuild/shared/partid"
)

// V1 implements carbuild.catalog.v1.CatalogService.
type V1 struct {
	catalogv1.UnimplementedCatalogServiceServer
	svc      *catalog.Service
	rev      revisionHeader
	draining <-chan struct{}
}

// NewV1 returns the v1 adapter over svc. rev is the revision the read
// methods answer and WatchRevision streams (nil: none, as when the cache is
// off); WatchRevision streams end when draining is closed (nil: never).
func NewV1(svc *catalog.Service, rev Revisions, draining <-chan struct{}) *V1 {
	return &V1{svc: svc, rev: revisionHeader{src: rev}, draining: draining}
}

// ListCars lists every car.
func (s *V1) ListCars(ctx context.Context, _ *catalogv1.ListCarsRequest) (*catalogv1.ListCarsResponse, error) {
	s.rev.set(ctx)
	cars, err := s.svc.ListCars(ctx)
	if err != nil {
		return nil, err
	}
	resp := &catalogv1.ListCarsResponse{Cars: make([]*catalogv1.Car, len(cars))}
	for i, c := range cars {
		resp.Cars[i] = carToProto(c)
	}
	return resp, nil
}

// ListParts lists a page of a car's parts.
func (s *V1) ListParts(ctx context.Context, req *catalogv1.ListPartsRequest) (*catalogv1.ListPartsResponse, error) {
	s.rev.set(ctx)
	page, err := s.svc.ListParts(ctx, catalog.PartsQuery{
		Car:       req.GetCarId(),
		Year:      int(req.GetYear()),
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &catalogv1.ListPartsResponse{Parts: partsToProto(page.Parts), NextPageToken: page.NextPageToken}, nil
}

// BatchGetParts returns parts by id, in the order asked.
func (s *V1) BatchGetParts(ctx context.Context, req *catalogv1.BatchGetPartsRequest) (*catalogv1.BatchGetPartsResponse, error) {
	s.rev.set(ctx)
	parts, err := s.svc.BatchGetParts(ctx, req.GetIds())
	if err != nil {
		return nil, err
	}
	return &catalogv1.BatchGetPartsResponse{Parts: partsToProto(parts)}, nil
}

// Compat implements the earlier system's catalogo.CatalogoService.
type Compat struct {
	catalogopb.UnimplementedCatalogoServiceServer
	svc *catalog.Service
	rev revisionHeader
}

// NewCompat returns the seed-compatible adapter over svc; rev is the
// revision GetPecas answers in its header (nil: none).
func NewCompat(svc *catalog.Service, rev Revisions) *Compat {
	return &Compat{svc: svc, rev: revisionHeader{src: rev}}
}

// GetPecas returns every part of the model named in the request. An unknown
// model answers an empty list, as the earlier system did; the year is
// accepted and not used.
func (s *Compat) GetPecas(ctx context.Context, req *catalogopb.Carro) (*catalogopb.PecasResponse, error) {
	s.rev.set(ctx)
	parts, err := s.svc.PartsForModel(ctx, req.GetModelo())
	if errors.Is(err, errs.NotFound) {
		return &catalogopb.PecasResponse{Pecas: []*commonpb.Peca{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return pecasOf(parts), nil
}

// pecasOf converts to the earlier system's shape, price in reais (the only
// place the catalog leaves integer centavos): a whole model's messages and
// ids in a few allocations, not two per part.
func pecasOf(parts []catalog.Part) *catalogopb.PecasResponse {
	pecas := make([]commonpb.Peca, len(parts))
	resp := &catalogopb.PecasResponse{Pecas: make([]*commonpb.Peca, len(parts))}
	for i, id := range formatIDs(parts) {
		p := parts[i]
		pecas[i].Id, pecas[i].Nome, pecas[i].Valor = id, p.Name, float64(p.Price)/100
		resp.Pecas[i] = &pecas[i]
	}
	return resp
}

// formatIDs writes the parts' ids (partid) as substrings of one string: one
// allocation for a page or a model rather than one per part. Each id ends
// with a comma in the string (digits never contain one), where its substring
// is cut.
func formatIDs(parts []catalog.Part) []string {
	b := make([]byte, 0, 9*len(parts)) // ids of up to 7 digits, a million parts, without growing
	for _, p := range parts {
		b = append(partid.Append(b, p.ID), ',')
	}
	all := string(b)
	ids := make([]string, len(parts))
	for i := range ids {
		end := strings.IndexByte(all, ',')
		ids[i], all = all[:end], all[end+1:]
	}
	return ids
}

func carToProto(c catalog.Car) *catalogv1.Car {
	return &catalogv1.Car{Id: c.ID, Name: c.Name, FirstYear: int32(c.FirstYear), LastYear: int32(c.LastYear)}
}

// partsToProto converts a page: its messages and ids in a few allocations,
// not three per part.
func partsToProto(parts []catalog.Part) []*catalogv1.Part {
	out := make([]*catalogv1.Part, len(parts))
	msgs := make([]catalogv1.Part, len(parts))
	prices := make([]moneyv1.Money, len(parts))
	for i, id := range formatIDs(parts) {
		setPart(&msgs[i], &prices[i], id, parts[i])
		out[i] = &msgs[i]
	}
	return out
}

func partToProto(p catalog.Part) *catalogv1.Part {
	var m catalogv1.Part
	setPart(&m, new(moneyv1.Money), partid.Format(p.ID), p)
	return &m
}

// setPart fills an empty message m, and its price, from p, whose id is id.
func setPart(m *catalogv1.Part, price *moneyv1.Money, id string, p catalog.Part) {
	price.CurrencyCode, price.MinorUnits = p.Currency, p.Price
	m.Id, m.CarId, m.Name = id, p.CarID, p.Name
	m.Category, m.Price = categoryToProto(p.Category), price
}

var categories = map[catalog.Category]catalogv1.PartCategory{
	catalog.CategoryChassis:      catalogv1.PartCategory_PART_CATEGORY_CHASSIS,
	catalog.CategoryEngine:       catalogv1.PartCategory_PART_CATEGORY_ENGINE,
	catalog.CategoryWheels:       catalogv1.PartCategory_PART_CATEGORY_WHEELS,
	catalog.CategoryHeadlight:    catalogv1.PartCategory_PART_CATEGORY_HEADLIGHT,
	catalog.CategoryBumper:       catalogv1.PartCategory_PART_CATEGORY_BUMPER,
	catalog.CategoryHood:         catalogv1.PartCategory_PART_CATEGORY_HOOD,
	catalog.CategorySpoiler:      catalogv1.PartCategory_PART_CATEGORY_SPOILER,
	catalog.CategoryHybridSystem: catalogv1.PartCategory_PART_CATEGORY_HYBRID_SYSTEM,
}

func categoryToProto(c catalog.Category) catalogv1.PartCategory {
	return categories[c] // unknown → UNSPECIFIED
}
