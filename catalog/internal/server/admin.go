package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/shared/auth"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// Admin implements carbuild.catalog.v1.CatalogAdminService: operators only.
type Admin struct {
	catalogv1.UnimplementedCatalogAdminServiceServer
	admin *catalog.Admin
}

// NewAdmin returns the management adapter over admin.
func NewAdmin(admin *catalog.Admin) *Admin { return &Admin{admin: admin} }

// operator returns the subject of a caller with the operator role: the
// identity the auth interceptor verified from the call's own token.
func operator(ctx context.Context) (string, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "catalog management needs an operator's bearer token")
	}
	if !id.HasRole(auth.RoleOperator) {
		return "", status.Error(codes.PermissionDenied, "catalog management needs the operator role")
	}
	return id.Subject, nil
}

// CreateCar adds a car.
func (s *Admin) CreateCar(ctx context.Context, req *catalogv1.CreateCarRequest) (*catalogv1.ManagedCar, error) {
	actor, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	c := req.GetCar()
	car, err := s.admin.CreateCar(ctx, actor, catalog.Car{ID: c.GetId(), Name: c.GetName(), FirstYear: int(c.GetFirstYear()), LastYear: int(c.GetLastYear())})
	if err != nil {
		return nil, err
	}
	return managedCarToProto(car), nil
}

// UpdateCar changes the fields set in the request.
func (s *Admin) UpdateCar(ctx context.Context, req *catalogv1.UpdateCarRequest) (*catalogv1.ManagedCar, error) {
	actor, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	var ch catalog.CarChange
	if req.Name != nil {
		ch.Name = req.Name
	}
	if req.FirstYear != nil {
		ch.FirstYear = intPtr(req.GetFirstYear())
	}
	if req.LastYear != nil {
		ch.LastYear = intPtr(req.GetLastYear())
	}
	car, err := s.admin.UpdateCar(ctx, actor, req.GetId(), ch, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return managedCarToProto(car), nil
}

// RetireCar hides a car from the read side.
func (s *Admin) RetireCar(ctx context.Context, req *catalogv1.RetireCarRequest) (*catalogv1.ManagedCar, error) {
	actor, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	car, err := s.admin.RetireCar(ctx, actor, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return managedCarToProto(car), nil
}

// CreatePart adds a part.
func (s *Admin) CreatePart(ctx context.Context, req *catalogv1.CreatePartRequest) (*catalogv1.ManagedPart, error) {
	actor, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	p := req.GetPart()
	if p.GetId() != "" {
		return nil, status.Error(codes.InvalidArgument, "a new part's id is assigned by the catalog: leave it empty")
	}
	cat, err := categoryFromProto(p.GetCategory())
	if err != nil {
		return nil, err
	}
	if p.GetPrice() == nil {
		return nil, status.Error(codes.InvalidArgument, "price is required")
	}
	part, err := s.admin.CreatePart(ctx, actor, catalog.Part{CarID: p.GetCarId(), Name: p.GetName(), Category: cat,
		Price: p.GetPrice().GetMinorUnits(), Currency: p.GetPrice().GetCurrencyCode()})
	if err != nil {
		return nil, err
	}
	return managedPartToProto(part), nil
}

// UpdatePart changes the fields set in the request.
func (s *Admin) UpdatePart(ctx context.Context, req *catalogv1.UpdatePartRequest) (*catalogv1.ManagedPart, error) {
	actor, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	var ch catalog.PartChange
	ch.Name = req.Name
	if req.Category != nil {
		cat, err := categoryFromProto(req.GetCategory())
		if err != nil {
			return nil, err
		}
		ch.Category = &cat
	}
	if pr := req.GetPrice(); pr != nil {
		minor, currency := pr.GetMinorUnits(), pr.GetCurrencyCode()
		ch.Price, ch.Currency = &minor, &currency
	}
	part, err := s.admin.UpdatePart(ctx, actor, req.GetId(), ch, req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return managedPartToProto(part), nil
}

// RetirePart hides a part from the read side.
func (s *Admin) RetirePart(ctx context.Context, req *catalogv1.RetirePartRequest) (*catalogv1.ManagedPart, error) {
	actor, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	part, err := s.admin.RetirePart(ctx, actor, req.GetId(), req.GetExpectedVersion())
	if err != nil {
		return nil, err
	}
	return managedPartToProto(part), nil
}

func intPtr(v int32) *int {
	n := int(v)
	return &n
}

// categoryFromProto is categoryToProto's inverse; UNSPECIFIED and unknown
// numbers are invalid.
func categoryFromProto(c catalogv1.PartCategory) (catalog.Category, error) {
	for k, v := range categories {
		if v == c {
			return k, nil
		}
	}
	return "", status.Error(codes.InvalidArgument, "category must be one of PART_CATEGORY_CHASSIS, _ENGINE, _WHEELS, _HEADLIGHT, _BUMPER, _HOOD, _SPOILER, _HYBRID_SYSTEM")
}

func managedCarToProto(c catalog.ManagedCar) *catalogv1.ManagedCar {
	return &catalogv1.ManagedCar{Car: carToProto(c.Car), Version: c.Version, Retired: c.Retired}
}

func managedPartToProto(p catalog.ManagedPart) *catalogv1.ManagedPart {
	return &catalogv1.ManagedPart{
		Part:    partToProto(p.Part),
		Version: p.Version,
		Retired: p.Retired,
	}
}
