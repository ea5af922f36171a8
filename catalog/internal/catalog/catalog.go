// Package catalog holds the catalog domain: cars, the parts that fit them,
// and the rules for reading them (case-insensitive model lookup, model years,
// pagination). It knows nothing about gRPC or SQL.
package catalog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"

	"github.com/carbuild/carbuild/shared/errs"
	"github.com/carbuild/carbuild/shared/partid"
)

// Category is what kind of part a part is.
type Category string

// The categories the schema allows.
const (
	CategoryChassis      Category = "chassis"
	CategoryEngine       Category = "engine"
	CategoryWheels       Category = "wheels"
	CategoryHeadlight    Category = "headlight"
	CategoryBumper       Category = "bumper"
	CategoryHood         Category = "hood"
	CategorySpoiler      Category = "spoiler"
	CategoryHybridSystem Category = "hybrid_system"
)

// Categories are the categories the schema allows, in declaration order.
var Categories = []Category{CategoryChassis, CategoryEngine, CategoryWheels, CategoryHeadlight,
	CategoryBumper, CategoryHood, CategorySpoiler, CategoryHybridSystem}

// Car is a car model and the model years it covers (inclusive).
type Car struct {
	ID        string
	Name      string
	FirstYear int
	LastYear  int
}

// Covers reports whether year is one of the car's model years.
func (c Car) Covers(year int) bool { return year >= c.FirstYear && year <= c.LastYear }

// Part is a part that fits one car. Price is in minor units (centavos).
type Part struct {
	ID       int64
	CarID    string
	Name     string
	Category Category
	Price    int64
	Currency string
}

// Limits on requests.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
	MaxBatchIDs     = 100
	MaxKeyLength    = 100
)

// Store reads the catalog.
type Store interface {
	ListCars(ctx context.Context) ([]Car, error)
	// FindCar finds a car by id or by name, case-insensitively; errs.NotFound
	// when there is none.
	FindCar(ctx context.Context, key string) (Car, error)
	// ListParts returns up to limit parts of a car with id > afterID, by id.
	ListParts(ctx context.Context, carID string, afterID int64, limit int) ([]Part, error)
	// GetParts returns the parts among ids that exist, in any order.
	GetParts(ctx context.Context, ids []int64) ([]Part, error)
}

// Service answers catalog questions over a Store.
type Service struct {
	store Store
	names *nameOrder
}

// NewService returns a Service reading from store.
func NewService(store Store) *Service { return &Service{store: store, names: newNameOrder()} }

// ListCars returns every car.
func (s *Service) ListCars(ctx context.Context) ([]Car, error) {
	return s.store.ListCars(ctx)
}

// PartsQuery asks for one page of a car's parts.
type PartsQuery struct {
	// Car is the car id or name, case-insensitive.
	Car string
	// Year, when non-zero, must be one of the car's model years.
	Year      int
	PageSize  int
	PageToken string
}

// PartsPage is one page of parts; NextPageToken is empty on the last page.
type PartsPage struct {
	Parts         []Part
	NextPageToken string
}

// ListParts returns a page of the parts that fit a car.
func (s *Service) ListParts(ctx context.Context, q PartsQuery) (PartsPage, error) {
	key, err := carKey(q.Car)
	if err != nil {
		return PartsPage{}, err
	}
	size := q.PageSize
	switch {
	case size == 0:
		size = DefaultPageSize
	case size < 0 || size > MaxPageSize:
		return PartsPage{}, errs.New(errs.InvalidArgument, "page_size must be between 1 and %d, got %d", MaxPageSize, size)
	}
	car, err := s.store.FindCar(ctx, key)
	if err != nil {
		return PartsPage{}, err
	}
	if q.Year != 0 && !car.Covers(q.Year) {
		return PartsPage{}, errs.New(errs.InvalidArgument, "year %d is not a model year of %s (%d-%d)", q.Year, car.Name, car.FirstYear, car.LastYear)
	}
	after, err := decodePageToken(q.PageToken, car.ID)
	if err != nil {
		return PartsPage{}, err
	}
	// One extra row tells whether another page exists.
	parts, err := s.store.ListParts(ctx, car.ID, after, size+1)
	if err != nil {
		return PartsPage{}, err
	}
	page := PartsPage{Parts: parts}
	if len(parts) > size {
		page.Parts = parts[:size]
		page.NextPageToken = encodePageToken(car.ID, parts[size-1].ID)
	}
	return page, nil
}

// PartsForModel returns every part of the car named model (the earlier
// system's lookup: case-insensitive, year not used), ordered by name as the
// earlier system's `ORDER BY nome` answered (see nameOrder).
func (s *Service) PartsForModel(ctx context.Context, model string) ([]Part, error) {
	key, err := carKey(model)
	if err != nil {
		return nil, err
	}
	car, err := s.store.FindCar(ctx, key)
	if err != nil {
		return nil, err
	}
	// One read for a car of up to modelBatch parts: a batch of exactly
	// MaxPageSize would cost a second, empty read for a car of 100 parts.
	var all []Part
	var after int64
	for {
		parts, err := s.store.ListParts(ctx, car.ID, after, modelBatch)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = parts
		} else {
			all = append(all, parts...)
		}
		if len(parts) < modelBatch {
			// The store's slice may be the cache's: sort a copy.
			all = slices.Clone(all)
			s.names.sort(all)
			return all, nil
		}
		after = parts[len(parts)-1].ID
	}
}

// modelBatch is how many parts PartsForModel reads at a time.
const modelBatch = 10 * MaxPageSize

// nameOrder sorts parts the way the earlier system's PostgreSQL answered
// `ORDER BY nome`. Its database had the server's default, linguistic
// collation (en_US.UTF-8), not the byte order of the C.UTF-8 databases we may
// run on, so the order is computed here and does not depend on the
// database's locale. Letters compare first, ignoring accents and case ("Capô"
// sorts with "Capo", before "Capoeira" and "capota"), then accents (Capo <
// Capô), then case (lower first); names equal in every respect keep id
// order. The rules are CLDR's root collation, which ICU and glibc's en_US
// follow for letters, accents and case (they may differ on punctuation).
//
// A car of more than keyedSort parts is sorted by collation keys, computed
// once per name (keys compare as the collator does, byte by byte):
// comparing with the collator walked both names on every comparison, ~7 per
// part, and names of one car share long prefixes ("Motor gen-05001 #2"):
// a third of the catalog's CPU for POST /get-pecas of a 100-part car.
// A small car is sorted with the collator: its few comparisons cost less
// than its keys (BenchmarkNameOrderByKeys: 1 µs against 6 µs for 7 parts,
// 120-170 µs against 220-740 µs for 100). The keys of names in Latin-1's
// letters (nearly all) come from a table instead (latinKeys): 17-22 µs for
// the 100 parts, against 270-340 µs with the collator comparing.
type nameOrder struct {
	// A Collator keeps buffers, so it is not safe for concurrent use, and
	// building one costs more than sorting a car's parts.
	collators sync.Pool
	// latin builds the keys of names written in Latin-1's letters (nearly
	// all), ~30× faster than the collator (BenchmarkNameOrderByKeys).
	latin *latinKeys
}

// sortKeys is one sort's collation keys, all in one buffer.
type sortKeys struct {
	col   *collate.Collator
	buf   collate.Buffer
	latin []byte // the keys latinKeys builds, end to end
	ends  []int  // where each key ends in latin
	keys  [][]byte
	idx   []int
}

// keyedSort is the size above which names are sorted by collation keys.
const keyedSort = 16

func newNameOrder() *nameOrder {
	return &nameOrder{
		collators: sync.Pool{New: func() any { return &sortKeys{col: collate.New(language.English)} }},
		latin:     newLatinKeys(),
	}
}

func (o *nameOrder) sort(parts []Part) {
	k := o.collators.Get().(*sortKeys)
	defer o.collators.Put(k)
	if len(parts) <= keyedSort {
		slices.SortFunc(parts, func(a, b Part) int {
			if c := k.col.CompareString(a.Name, b.Name); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		return
	}
	k.keys, k.idx = k.keys[:0], k.idx[:0]
	if !o.latinKeys(k, parts) {
		k.buf.Reset()
		for _, p := range parts {
			k.keys = append(k.keys, k.col.KeyFromString(&k.buf, p.Name))
		}
	}
	for i := range parts {
		k.idx = append(k.idx, i)
	}
	slices.SortFunc(k.idx, func(a, b int) int {
		if c := bytes.Compare(k.keys[a], k.keys[b]); c != 0 {
			return c
		}
		return cmp.Compare(parts[a].ID, parts[b].ID)
	})
	sorted := make([]Part, len(parts))
	for i, j := range k.idx {
		sorted[i] = parts[j]
	}
	copy(parts, sorted)
	clear(k.keys) // the buffer's bytes are reused; drop the references
	if cap(k.keys) > 4*MaxPageSize*10 {
		k.keys, k.idx, k.latin, k.ends = nil, nil, nil, nil // one huge car does not pin its buffers
	}
}

// latinKeys fills k.keys with latinKeys' keys of every name, or reports
// false, k.keys untouched, when a name has a character they do not cover:
// the keys of one sort must all come from the same scheme.
func (o *nameOrder) latinKeys(k *sortKeys, parts []Part) bool {
	k.latin, k.ends = k.latin[:0], k.ends[:0]
	for _, p := range parts {
		var ok bool
		if k.latin, ok = o.latin.appendKey(k.latin, p.Name); !ok {
			return false
		}
		k.ends = append(k.ends, len(k.latin))
	}
	start := 0
	for _, end := range k.ends {
		k.keys = append(k.keys, k.latin[start:end:end])
		start = end
	}
	return true
}

// BatchGetParts returns the parts with the given ids, in the order asked.
func (s *Service) BatchGetParts(ctx context.Context, ids []string) ([]Part, error) {
	if len(ids) == 0 {
		return nil, errs.New(errs.InvalidArgument, "ids must not be empty")
	}
	if len(ids) > MaxBatchIDs {
		return nil, errs.New(errs.InvalidArgument, "at most %d ids, got %d", MaxBatchIDs, len(ids))
	}
	nums := make([]int64, len(ids))
	for i, id := range ids {
		n, err := partid.Parse(id)
		if err != nil {
			return nil, err
		}
		nums[i] = n
	}
	found, err := s.store.GetParts(ctx, nums)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]Part, len(found))
	for _, p := range found {
		byID[p.ID] = p
	}
	out := make([]Part, len(nums))
	for i, n := range nums {
		p, ok := byID[n]
		if !ok {
			return nil, errs.New(errs.NotFound, "part %d not found", n)
		}
		out[i] = p
	}
	return out, nil
}

func carKey(s string) (string, error) {
	k := strings.TrimSpace(s)
	if k == "" {
		return "", errs.New(errs.InvalidArgument, "car model must not be empty")
	}
	if len(k) > MaxKeyLength {
		return "", errs.New(errs.InvalidArgument, "car model longer than %d bytes", MaxKeyLength)
	}
	// PostgreSQL text cannot hold NUL: the query would fail as a database
	// error (503) instead of a bad request.
	if strings.ContainsFunc(k, unicode.IsControl) {
		return "", errs.New(errs.InvalidArgument, "car model must not contain control characters")
	}
	return k, nil
}

// Page tokens are opaque to clients: base64url("<car id>:<last part id>").
func encodePageToken(carID string, lastID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(carID + ":" + strconv.FormatInt(lastID, 10)))
}

func decodePageToken(token, carID string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	bad := errs.New(errs.InvalidArgument, "page_token is not valid for this car")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, bad
	}
	car, last, ok := strings.Cut(string(raw), ":")
	if !ok || car != carID {
		return 0, bad
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil || n <= 0 {
		return 0, bad
	}
	return n, nil
}
