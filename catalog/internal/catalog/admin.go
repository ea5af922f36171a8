package catalog

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/carbuild/carbuild/shared/errs"
	"github.com/carbuild/carbuild/shared/partid"
)

// Limits of the records operators write; the schema has the same rules.
const (
	MaxNameLength = 100
	MaxCarIDLen   = 64
	MinYear       = 1886
	MaxYear       = 2100
	// MaxPrice bounds a unit price in minor units (R$ 10 billion): far
	// from overflowing a quote's quantity times price.
	MaxPrice = 1_000_000_000_000
	// Currency is the one currency the catalog sells in.
	Currency = "BRL"
)

// Audit actions and entities, as catalog.audit stores them.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionRetire = "retire"
	EntityCar    = "car"
	EntityPart   = "part"
)

// ManagedCar is a car with what only the management API sees.
type ManagedCar struct {
	Car
	// Version grows by one with every change.
	Version int64
	Retired bool
	// ActiveParts counts the car's parts that are not retired.
	ActiveParts int
}

// ManagedPart is a part with what only the management API sees.
type ManagedPart struct {
	Part
	Version int64
	Retired bool
}

// CarChange holds the fields an update sets; nil keeps the field.
type CarChange struct {
	Name                *string
	FirstYear, LastYear *int
}

// PartChange holds the fields an update sets; nil keeps the field.
type PartChange struct {
	Name     *string
	Category *Category
	// Price in minor units of Currency.
	Price    *int64
	Currency *string
}

// AdminStore writes the catalog. Every method is one transaction that also
// appends an audit row naming actor.
type AdminStore interface {
	// CreateCar inserts car; an errs.Conflict when its id or name is taken.
	CreateCar(ctx context.Context, actor string, car Car) (ManagedCar, error)
	// EditCar locks car id (errs.NotFound if there is none), calls edit with
	// it and stores edit's answer as action.
	EditCar(ctx context.Context, actor, action, id string, edit func(ManagedCar) (ManagedCar, error)) (ManagedCar, error)
	// CreatePart inserts part, which gets a new id; errs.NotFound when its car
	// does not exist, errs.FailedPrecondition when the car is retired.
	CreatePart(ctx context.Context, actor string, part Part) (ManagedPart, error)
	// EditPart is EditCar for parts.
	EditPart(ctx context.Context, actor, action string, id int64, edit func(ManagedPart) (ManagedPart, error)) (ManagedPart, error)
}

// Admin applies operators' changes to the catalog.
type Admin struct{ store AdminStore }

// NewAdmin returns an Admin writing to store.
func NewAdmin(store AdminStore) *Admin { return &Admin{store: store} }

// CreateCar adds a car.
func (a *Admin) CreateCar(ctx context.Context, actor string, car Car) (ManagedCar, error) {
	if err := CheckCarID(car.ID); err != nil {
		return ManagedCar{}, err
	}
	if err := CheckCar(car); err != nil {
		return ManagedCar{}, err
	}
	return a.store.CreateCar(ctx, actor, car)
}

// UpdateCar applies change to car id, at version expected (0: any).
func (a *Admin) UpdateCar(ctx context.Context, actor, id string, change CarChange, expected int64) (ManagedCar, error) {
	if err := CheckCarID(id); err != nil {
		return ManagedCar{}, err
	}
	if change == (CarChange{}) {
		return ManagedCar{}, errs.New(errs.InvalidArgument, "nothing to change: set name, first_year or last_year")
	}
	return a.store.EditCar(ctx, actor, ActionUpdate, id, func(c ManagedCar) (ManagedCar, error) {
		if err := editable("car "+c.ID, c.Version, c.Retired, expected); err != nil {
			return c, err
		}
		if change.Name != nil {
			c.Name = *change.Name
		}
		if change.FirstYear != nil {
			c.FirstYear = *change.FirstYear
		}
		if change.LastYear != nil {
			c.LastYear = *change.LastYear
		}
		c.Version++
		return c, CheckCar(c.Car)
	})
}

// RetireCar hides car id from the read side; its parts must be retired first.
func (a *Admin) RetireCar(ctx context.Context, actor, id string, expected int64) (ManagedCar, error) {
	if err := CheckCarID(id); err != nil {
		return ManagedCar{}, err
	}
	return a.store.EditCar(ctx, actor, ActionRetire, id, func(c ManagedCar) (ManagedCar, error) {
		if err := editable("car "+c.ID, c.Version, c.Retired, expected); err != nil {
			return c, err
		}
		if c.ActiveParts > 0 {
			return c, errs.New(errs.FailedPrecondition, "car %s still has %d parts on sale: retire them first", c.ID, c.ActiveParts)
		}
		c.Retired = true
		c.Version++
		return c, nil
	})
}

// CreatePart adds a part; its ID is ignored (the store assigns one).
func (a *Admin) CreatePart(ctx context.Context, actor string, part Part) (ManagedPart, error) {
	if err := CheckCarID(part.CarID); err != nil {
		return ManagedPart{}, err
	}
	if err := CheckPart(part); err != nil {
		return ManagedPart{}, err
	}
	return a.store.CreatePart(ctx, actor, part)
}

// UpdatePart applies change to part id (decimal), at version expected (0: any).
func (a *Admin) UpdatePart(ctx context.Context, actor, id string, change PartChange, expected int64) (ManagedPart, error) {
	n, err := partid.Parse(id)
	if err != nil {
		return ManagedPart{}, err
	}
	if change == (PartChange{}) {
		return ManagedPart{}, errs.New(errs.InvalidArgument, "nothing to change: set name, category or price")
	}
	return a.store.EditPart(ctx, actor, ActionUpdate, n, func(p ManagedPart) (ManagedPart, error) {
		if err := editable(fmt.Sprintf("part %d", p.ID), p.Version, p.Retired, expected); err != nil {
			return p, err
		}
		if change.Name != nil {
			p.Name = *change.Name
		}
		if change.Category != nil {
			p.Category = *change.Category
		}
		if change.Price != nil {
			p.Price = *change.Price
		}
		if change.Currency != nil {
			p.Currency = *change.Currency
		}
		p.Version++
		return p, CheckPart(p.Part)
	})
}

// RetirePart hides part id from the read side.
func (a *Admin) RetirePart(ctx context.Context, actor, id string, expected int64) (ManagedPart, error) {
	n, err := partid.Parse(id)
	if err != nil {
		return ManagedPart{}, err
	}
	return a.store.EditPart(ctx, actor, ActionRetire, n, func(p ManagedPart) (ManagedPart, error) {
		if err := editable(fmt.Sprintf("part %d", p.ID), p.Version, p.Retired, expected); err != nil {
			return p, err
		}
		p.Retired = true
		p.Version++
		return p, nil
	})
}

// editable says whether a record at version, retired or not, may be
// changed by a request that expects version expected (0: any).
func editable(what string, version int64, retired bool, expected int64) error {
	switch {
	case expected < 0:
		return errs.New(errs.InvalidArgument, "expected_version must not be negative")
	case expected != 0 && expected != version:
		return errs.New(errs.FailedPrecondition, "%s is at version %d, not %d: read it again", what, version, expected)
	case retired:
		return errs.New(errs.FailedPrecondition, "%s is retired", what)
	}
	return nil
}

// carID is the schema's slug rule for car ids.
var carID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// CheckCarID checks a car id: a lowercase slug of at most MaxCarIDLen bytes.
func CheckCarID(id string) error {
	if len(id) > MaxCarIDLen || !carID.MatchString(id) {
		return errs.New(errs.InvalidArgument, "car id %q must be a lowercase slug (a-z, 0-9, single hyphens between) of at most %d bytes", errs.Truncate(id), MaxCarIDLen)
	}
	return nil
}

// CheckCar checks a car's name and years.
func CheckCar(c Car) error {
	if err := checkName("car", c.Name); err != nil {
		return err
	}
	for _, y := range []int{c.FirstYear, c.LastYear} {
		if y < MinYear || y > MaxYear {
			return errs.New(errs.InvalidArgument, "model years must be between %d and %d, got %d", MinYear, MaxYear, y)
		}
	}
	if c.FirstYear > c.LastYear {
		return errs.New(errs.InvalidArgument, "first_year %d is after last_year %d", c.FirstYear, c.LastYear)
	}
	return nil
}

// CheckPart checks a part's name, category and price.
func CheckPart(p Part) error {
	if err := checkName("part", p.Name); err != nil {
		return err
	}
	if !p.Category.Known() {
		return errs.New(errs.InvalidArgument, "category must be one of chassis, engine, wheels, headlight, bumper, hood, spoiler, hybrid_system")
	}
	if p.Currency != Currency {
		return errs.New(errs.InvalidArgument, "price must be in %s, got %q", Currency, errs.Truncate(p.Currency))
	}
	if p.Price < 0 || p.Price > MaxPrice {
		return errs.New(errs.InvalidArgument, "price must be between 0 and %d minor units, got %d", int64(MaxPrice), p.Price)
	}
	return nil
}

// Known reports whether c is one of the categories the schema allows.
func (c Category) Known() bool { return slices.Contains(Categories, c) }

// checkName: not blank, no surrounding space, no control characters (NUL
// cannot be stored), at most MaxNameLength bytes.
func checkName(what, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errs.New(errs.InvalidArgument, "%s name must not be empty", what)
	case len(name) > MaxNameLength:
		return errs.New(errs.InvalidArgument, "%s name longer than %d bytes", what, MaxNameLength)
	case !utf8.ValidString(name):
		return errs.New(errs.InvalidArgument, "%s name must be UTF-8", what)
	case strings.TrimSpace(name) != name:
		return errs.New(errs.InvalidArgument, "%s name must not start or end with spaces", what)
	case strings.ContainsFunc(name, unicode.IsControl):
		return errs.New(errs.InvalidArgument, "%s name must not contain control characters", what)
	}
	return nil
}
