// Package catalogclient prices parts by asking the catalog service over gRPC
// (carbuild.catalog.v1.CatalogService/BatchGetParts), and keeps the parts it
// was given in a Cache kept valid by the catalog's revision (see Cache), so
// that quotes and orders of known parts need no call while nothing changed.
package catalogclient

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogcache "github.com/carbuild/carbuild/catalog/catalogclient"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/errs"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// Client implements pricing.Catalog.
type Client struct {
	api     catalogv1.CatalogServiceClient
	timeout time.Duration
	cache   *Cache

	start     func() // run once, at the first look-up
	startOnce sync.Once
}

// New returns a Client; every call gets at most timeout, less when the
// caller's deadline is sooner. cache may be nil (every look-up asks the
// catalog).
func New(api catalogv1.CatalogServiceClient, timeout time.Duration, cache *Cache) *Client {
	return &Client{api: api, timeout: timeout, cache: cache}
}

// OnFirstUse sets start to be run once, at the first look-up; call it
// before the client is used. pricing starts the revision watch this way, so
// that the catalog connection is first dialled by a quote, as without the
// cache: a watch dialled at start-up, before the catalog listens, would put
// the connection in reconnect backoff and fail the first quotes.
func (c *Client) OnFirstUse(start func()) { c.start = start }

// Parts returns the catalog parts with the given ids: from the cache when it
// holds all of them, else from the catalog.
func (c *Client) Parts(ctx context.Context, ids []int64) (map[int64]quote.Part, error) {
	if c.start != nil {
		c.startOnce.Do(c.start)
	}
	if c.cache == nil {
		return c.fetch(ctx, ids)
	}
	parts, res, fill := c.cache.GetAll(ids)
	switch res {
	case catalogcache.Hit:
		return parts, nil
	case catalogcache.Bypass:
		return c.fetch(ctx, ids)
	}
	var md metadata.MD
	parts, err := c.fetch(ctx, ids, grpc.Header(&md))
	if err != nil {
		return nil, err // unknown ids (NOT_FOUND) are never stored
	}
	if v := md.Get(catalogcache.Header); len(v) == 1 {
		if rev, ok := catalogcache.Parse(v[0]); ok {
			c.cache.PutAll(fill, rev, parts)
		}
	}
	return parts, nil
}

// fetch asks the catalog for the parts.
func (c *Client) fetch(ctx context.Context, ids []int64, opts ...grpc.CallOption) (map[int64]quote.Part, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := &catalogv1.BatchGetPartsRequest{Ids: make([]string, len(ids))}
	for i, id := range ids {
		req.Ids[i] = strconv.FormatInt(id, 10)
	}
	resp, err := c.api.BatchGetParts(ctx, req, opts...)
	if err != nil {
		return nil, fromStatus(err)
	}
	parts := make(map[int64]quote.Part, len(resp.GetParts()))
	for _, p := range resp.GetParts() {
		id, err := strconv.ParseInt(p.GetId(), 10, 64)
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, fmt.Errorf("catalog returned part id %q", p.GetId()), "catalog unavailable; retry")
		}
		parts[id] = partFromProto(id, p)
	}
	return parts, nil
}

func partFromProto(id int64, p *catalogv1.Part) quote.Part {
	return quote.Part{
		ID:        id,
		Name:      p.GetName(),
		Category:  category(p.GetCategory()),
		UnitPrice: p.GetPrice().GetMinorUnits(),
		Currency:  p.GetPrice().GetCurrencyCode(),
	}
}

func category(c catalogv1.PartCategory) string {
	switch c {
	case catalogv1.PartCategory_PART_CATEGORY_CHASSIS:
		return quote.CategoryChassis
	case catalogv1.PartCategory_PART_CATEGORY_ENGINE:
		return "engine"
	case catalogv1.PartCategory_PART_CATEGORY_WHEELS:
		return "wheels"
	case catalogv1.PartCategory_PART_CATEGORY_HEADLIGHT:
		return "headlight"
	case catalogv1.PartCategory_PART_CATEGORY_BUMPER:
		return "bumper"
	case catalogv1.PartCategory_PART_CATEGORY_HOOD:
		return "hood"
	case catalogv1.PartCategory_PART_CATEGORY_SPOILER:
		return "spoiler"
	case catalogv1.PartCategory_PART_CATEGORY_HYBRID_SYSTEM:
		return "hybrid_system"
	default:
		return "other"
	}
}

// fromStatus turns the catalog's status into a pricing error, keeping its
// message: NOT_FOUND and INVALID_ARGUMENT pass through as such.
func fromStatus(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound:
		return errs.New(errs.NotFound, "%s", st.Message())
	case codes.InvalidArgument:
		return errs.New(errs.InvalidArgument, "%s", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("catalog: %w", context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("catalog: %w", context.Canceled)
	default:
		return errs.Wrap(errs.Unavailable, err, "catalog unavailable; retry")
	}
}
