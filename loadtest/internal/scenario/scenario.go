// Package scenario builds the benchmark's requests and their content checks:
// POST /get-pecas (the seed-compatible hot path), the single v1 endpoints and
// the mixed journey (health, parts, quote, order in equal weight). Checks
// compare every answer with values computed from the seed catalog and the
// pricing rules (package shop), not just the status code.
package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/shop"
)

// Request kinds (endpoint labels).
const (
	KindGetPecas = "POST /get-pecas"
	KindHealth   = "GET /health"
	KindParts    = "GET /v1/cars/{id}/parts"
	KindQuote    = "POST /v1/quotes"
	KindOrder    = "POST /v1/orders"
)

var jsonHeader = http.Header{"Content-Type": []string{"application/json"}}

// CivicBody is the POST /get-pecas request body used throughout.
const CivicBody = `{"modelo":"Civic","ano":2023}`

type peca struct {
	ID    string  `json:"id"`
	Nome  string  `json:"nome"`
	Valor float64 `json:"valor"`
}

type pecasResponse struct {
	Pecas []peca `json:"pecas"`
}

// checkPecas verifies a /get-pecas body against the seed parts of the car, in
// the seed-compatible order (by name).
func checkPecas(body []byte, car string) error {
	var got pecasResponse
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("get-pecas: body is not JSON: %w", err)
	}
	want := shop.CompatParts(car)
	if len(got.Pecas) != len(want) {
		return fmt.Errorf("get-pecas %s: %d pecas, want %d", car, len(got.Pecas), len(want))
	}
	for i, w := range want {
		g := got.Pecas[i]
		if g.ID != w.ID || g.Nome != w.Name || int64(g.Valor*100+0.5) != w.Price {
			return fmt.Errorf("get-pecas %s: peca %d is %+v, want id %s %q valor %.2f", car, i, g, w.ID, w.Name, float64(w.Price)/100)
		}
	}
	return nil
}

func statusErr(r *vegeta.Result, want int) error {
	if int(r.Code) == want {
		return nil
	}
	b := r.Body
	if len(b) > 100 {
		b = b[:100]
	}
	return fmt.Errorf("status %d, want %d: %s", r.Code, want, bytes.TrimSpace(b))
}

// validated remembers response bodies that passed a full check, so that the
// byte-identical answers that follow (the same car's parts, the same basket's
// quote) are accepted by comparison instead of decoded again: the check stays
// complete while the load generator spends its CPU on load (a full decode of a
// /get-pecas body costs ~25 µs here, a lookup well under 1 µs).
type validated struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

const maxValidated = 64

func newValidated() *validated { return &validated{m: map[string]struct{}{}} }

func (v *validated) seen(b []byte) bool {
	v.mu.RLock()
	_, ok := v.m[string(b)]
	v.mu.RUnlock()
	return ok
}

func (v *validated) add(b []byte) {
	v.mu.Lock()
	if len(v.m) < maxValidated {
		v.m[string(b)] = struct{}{}
	}
	v.mu.Unlock()
}

// GetPecas is POST /get-pecas for Civic, checked part by part against the seed.
func GetPecas(base string) load.Scenario {
	u := base + "/get-pecas"
	body := []byte(CivicBody)
	ok := newValidated()
	return load.Scenario{
		Name: "get-pecas",
		Targeter: func(t *vegeta.Target) error {
			t.Method, t.URL, t.Body, t.Header = http.MethodPost, u, body, jsonHeader
			return nil
		},
		Kind: func(string) string { return KindGetPecas },
		Check: func(r *vegeta.Result) error {
			if err := statusErr(r, http.StatusOK); err != nil {
				return err
			}
			if ok.seen(r.Body) {
				return nil
			}
			if err := checkPecas(r.Body, "civic"); err != nil {
				return err
			}
			ok.add(r.Body)
			return nil
		},
	}
}

// Money is the v1 money JSON; proto3 JSON omits a zero minorUnits.
type Money struct {
	CurrencyCode string `json:"currencyCode"`
	MinorUnits   string `json:"minorUnits"`
}

// Centavos parses the amount, requiring BRL.
func (m Money) Centavos() (int64, error) {
	if m.CurrencyCode != "BRL" {
		return 0, fmt.Errorf("currency %q, want BRL", m.CurrencyCode)
	}
	if m.MinorUnits == "" {
		return 0, nil
	}
	return strconv.ParseInt(m.MinorUnits, 10, 64)
}

type v1Part struct {
	ID       string `json:"id"`
	CarID    string `json:"carId"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Price    Money  `json:"price"`
}

type v1Line struct {
	PartID    string `json:"partId"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice Money  `json:"unitPrice"`
	LineTotal Money  `json:"lineTotal"`
}

type v1Priced struct {
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	Lines        []v1Line `json:"lines"`
	Subtotal     Money    `json:"subtotal"`
	Shipping     Money    `json:"shipping"`
	Total        Money    `json:"total"`
	FreeShipping bool     `json:"freeShipping"`
	CreateTime   string   `json:"createTime"`
	// ReceiptToken answers an anonymous order: GET /v1/orders/{id} needs it.
	ReceiptToken string `json:"receiptToken"`
}

// Basket is a basket of seed parts with its totals by the rules and, once
// quoted, the total the API quoted (which orders send as expectedTotal).
type Basket struct {
	Items  []shop.Item
	Want   shop.Totals
	Quoted Money
	body   []byte // {"items":[...]}
}

// DefaultBaskets are varied baskets (minimum shipping, per-unit shipping, free
// shipping, several cars), each with at most one chassis.
func DefaultBaskets() []*Basket {
	sets := [][]shop.Item{
		{{PartID: "7", Quantity: 1}},
		{{PartID: "10", Quantity: 2}},
		{{PartID: "7", Quantity: 1}, {PartID: "8", Quantity: 1}},
		{{PartID: "9", Quantity: 1}, {PartID: "10", Quantity: 1}, {PartID: "13", Quantity: 2}},
		{{PartID: "4", Quantity: 3}, {PartID: "17", Quantity: 1}},
		{{PartID: "14", Quantity: 1}, {PartID: "20", Quantity: 1}, {PartID: "16", Quantity: 4}},
		{{PartID: "1", Quantity: 1}, {PartID: "2", Quantity: 1}, {PartID: "3", Quantity: 1}, {PartID: "4", Quantity: 1}, {PartID: "5", Quantity: 1}, {PartID: "6", Quantity: 1}},
		{{PartID: "12", Quantity: 1}, {PartID: "11", Quantity: 1}},
	}
	out := make([]*Basket, 0, len(sets))
	for _, items := range sets {
		want, err := shop.Price(items)
		if err != nil {
			panic(fmt.Sprintf("scenario: default basket %v breaks the rules: %v", items, err)) // a programming error
		}
		out = append(out, &Basket{Items: items, Want: want, body: itemsJSON(items, nil)})
	}
	return out
}

func itemsJSON(items []shop.Item, extra map[string]any) []byte {
	type li struct {
		PartID   string `json:"partId"`
		Quantity int    `json:"quantity"`
	}
	m := map[string]any{}
	lines := make([]li, len(items))
	for i, it := range items {
		lines[i] = li{it.PartID, it.Quantity}
	}
	m["items"] = lines
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// checkPriced compares a quote or order with the basket, line by line.
func checkPriced(p *v1Priced, b *Basket) error {
	if len(p.Lines) != len(b.Items) {
		return fmt.Errorf("%d lines, want %d", len(p.Lines), len(b.Items))
	}
	var sub int64
	for i, it := range b.Items {
		l := p.Lines[i]
		part, _ := shop.PartByID(it.PartID)
		unit, err := l.UnitPrice.Centavos()
		if err != nil {
			return fmt.Errorf("line %d unitPrice: %w", i, err)
		}
		lt, err := l.LineTotal.Centavos()
		if err != nil {
			return fmt.Errorf("line %d lineTotal: %w", i, err)
		}
		if l.PartID != it.PartID || l.Quantity != it.Quantity || l.Name != part.Name || unit != part.Price || lt != unit*int64(it.Quantity) {
			return fmt.Errorf("line %d is %+v, want part %s x%d at %d", i, l, it.PartID, it.Quantity, part.Price)
		}
		sub += lt
	}
	got := [3]int64{}
	for i, m := range []Money{p.Subtotal, p.Shipping, p.Total} {
		v, err := m.Centavos()
		if err != nil {
			return fmt.Errorf("totals: %w", err)
		}
		got[i] = v
	}
	want := [3]int64{b.Want.Subtotal, b.Want.Shipping, b.Want.Total}
	if got != want || sub != b.Want.Subtotal {
		return fmt.Errorf("subtotal/shipping/total %v, rules give %v", got, want)
	}
	return nil
}

// Quote prices each basket through POST /v1/quotes, checks the answer against
// the rules and keeps the quoted total for the orders.
func Quote(ctx context.Context, client *http.Client, base string, baskets []*Basket) error {
	for _, b := range baskets {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/quotes", bytes.NewReader(b.body))
		if err != nil {
			return err
		}
		req.Header = jsonHeader.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("quote %v: %w", b.Items, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("quote %v: %w", b.Items, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("quote %v: status %d: %s", b.Items, resp.StatusCode, body)
		}
		var q v1Priced
		if err := json.Unmarshal(body, &q); err != nil {
			return fmt.Errorf("quote %v: %w", b.Items, err)
		}
		if err := checkPriced(&q, b); err != nil {
			return fmt.Errorf("quote %v: %w", b.Items, err)
		}
		b.Quoted = q.Total
	}
	return nil
}

// Orders records the orders the load placed, to verify afterwards that each was stored.
type Orders struct {
	// KeyPrefix starts every idempotency key of this run ("bench-<run id>-").
	KeyPrefix string
	mu        sync.Mutex
	ids       []string
	totals    map[string]int64
	receipts  map[string]string // the load orders anonymously: read back by receipt
	seq       atomic.Int64
}

// NewOrders returns an order log whose idempotency keys start with prefix.
func NewOrders(prefix string) *Orders {
	return &Orders{KeyPrefix: prefix, totals: map[string]int64{}, receipts: map[string]string{}}
}

func (o *Orders) add(id string, total int64, receipt string) {
	o.mu.Lock()
	o.ids = append(o.ids, id)
	o.totals[id] = total
	o.receipts[id] = receipt
	o.mu.Unlock()
}

// IDs returns the ids of the orders confirmed with a 2xx answer so far.
func (o *Orders) IDs() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ids...)
}

// Count is the number of orders confirmed with a 2xx answer.
func (o *Orders) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ids)
}

func v1Kinds(base string) func(u string) string {
	return func(u string) string {
		p := strings.TrimPrefix(u, base)
		switch {
		case strings.HasPrefix(p, "/health"):
			return KindHealth
		case strings.HasPrefix(p, "/v1/cars/"):
			return KindParts
		case strings.HasPrefix(p, "/v1/quotes"):
			return KindQuote
		case strings.HasPrefix(p, "/v1/orders"):
			return KindOrder
		case strings.HasPrefix(p, "/get-pecas"):
			return KindGetPecas
		}
		return "other"
	}
}

// PartsPath is the catalog read of the mixed journey.
const PartsPath = "/v1/cars/civic/parts?year=2023"

// Mixed is the journey of the benchmark: GET /health, GET /v1/cars/civic/parts,
// POST /v1/quotes and POST /v1/orders in equal weight (round robin). Quotes and
// orders cycle through the baskets, which must have been quoted (see Quote);
// each order has a fresh idempotency key and the quoted total. kinds selects
// a subset (nil = all four), which gives the per-endpoint scenarios.
func Mixed(name, base string, baskets []*Basket, orders *Orders, kinds []string) load.Scenario {
	if len(kinds) == 0 {
		kinds = []string{KindHealth, KindParts, KindQuote, KindOrder}
	}
	kindOf := v1Kinds(base)
	checkKind := mixedCheck(baskets, orders)
	seen := map[string]*validated{} // per kind; read-only after this
	for _, k := range []string{KindHealth, KindParts, KindQuote, KindGetPecas} {
		seen[k] = newValidated()
	}
	var n atomic.Uint64
	partsURL := base + PartsPath
	return load.Scenario{
		Name: name,
		Targeter: func(t *vegeta.Target) error {
			i := n.Add(1) - 1
			b := baskets[int(i/uint64(len(kinds)))%len(baskets)]
			t.Header = jsonHeader
			switch kinds[i%uint64(len(kinds))] {
			case KindHealth:
				t.Method, t.URL, t.Body = http.MethodGet, base+"/health", nil
			case KindParts:
				t.Method, t.URL, t.Body = http.MethodGet, partsURL, nil
			case KindQuote:
				t.Method, t.URL, t.Body = http.MethodPost, base+"/v1/quotes", b.body
			case KindOrder:
				key := orders.KeyPrefix + strconv.FormatInt(orders.seq.Add(1), 10)
				t.Method, t.URL = http.MethodPost, base+"/v1/orders"
				t.Body = itemsJSON(b.Items, map[string]any{"idempotencyKey": key, "expectedTotal": b.Quoted})
			case KindGetPecas:
				t.Method, t.URL, t.Body = http.MethodPost, base+"/get-pecas", []byte(CivicBody)
			default:
				return errors.New("unknown kind")
			}
			return nil
		},
		Kind: kindOf,
		Check: func(r *vegeta.Result) error {
			if err := statusErr(r, http.StatusOK); err != nil {
				return err
			}
			kind := kindOf(r.URL)
			v := seen[kind] // nil for orders: every order is new and fully checked
			if v != nil && v.seen(r.Body) {
				return nil // byte-identical to an answer of this kind that passed every check
			}
			if err := checkKind(kind, r); err != nil {
				return err
			}
			if v != nil {
				v.add(r.Body)
			}
			return nil
		},
	}
}

func mixedCheck(baskets []*Basket, orders *Orders) func(kind string, r *vegeta.Result) error {
	return func(kind string, r *vegeta.Result) error {
		switch kind {
		case KindHealth:
			var h struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(r.Body, &h); err != nil || h.Status != "healthy" {
				return fmt.Errorf("health: %q", r.Body)
			}
		case KindParts:
			return checkParts(r.Body)
		case KindQuote:
			var q v1Priced
			if err := json.Unmarshal(r.Body, &q); err != nil {
				return fmt.Errorf("quote: %w", err)
			}
			b := basketFor(baskets, &q)
			if b == nil {
				return errors.New("quote: lines match no basket sent")
			}
			if err := checkPriced(&q, b); err != nil {
				return fmt.Errorf("quote: %w", err)
			}
		case KindOrder:
			var o v1Priced
			if err := json.Unmarshal(r.Body, &o); err != nil {
				return fmt.Errorf("order: %w", err)
			}
			if o.Status != "ORDER_STATUS_CONFIRMED" || len(o.ID) < 16 || o.CreateTime == "" {
				return fmt.Errorf("order: status %q id %q createTime %q", o.Status, o.ID, o.CreateTime)
			}
			b := basketFor(baskets, &o)
			if b == nil {
				return errors.New("order: lines match no basket sent")
			}
			if err := checkPriced(&o, b); err != nil {
				return fmt.Errorf("order: %w", err)
			}
			orders.add(o.ID, b.Want.Total, o.ReceiptToken)
		case KindGetPecas:
			return checkPecas(r.Body, "civic")
		}
		return nil
	}
}

func basketFor(baskets []*Basket, p *v1Priced) *Basket {
	for _, b := range baskets {
		if len(b.Items) != len(p.Lines) {
			continue
		}
		match := true
		for i, it := range b.Items {
			if p.Lines[i].PartID != it.PartID || p.Lines[i].Quantity != it.Quantity {
				match = false
				break
			}
		}
		if match {
			return b
		}
	}
	return nil
}

func checkParts(body []byte) error {
	var got struct {
		Parts []v1Part `json:"parts"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("parts: %w", err)
	}
	want := shop.CarParts("civic")
	if len(got.Parts) != len(want) {
		return fmt.Errorf("parts: %d, want %d", len(got.Parts), len(want))
	}
	for i, w := range want {
		g := got.Parts[i]
		price, err := g.Price.Centavos()
		if err != nil || g.ID != w.ID || g.CarID != "civic" || g.Name != w.Name || g.Category != w.Category || price != w.Price {
			return fmt.Errorf("parts: part %d is %+v, want %+v", i, g, w)
		}
	}
	return nil
}

// Verification is the outcome of looking the placed orders up again.
type Verification struct {
	Confirmed int      `json:"confirmed_2xx"`   // orders answered 2xx during the load
	Checked   int      `json:"checked_via_api"` // looked up with GET /v1/orders/{id}
	Found     int      `json:"found_via_api"`   // found with the same total
	Missing   []string `json:"missing,omitempty"`
	DBCount   int      `json:"db_count"` // rows in orders.orders with this run's keys; -1 when not counted
	DBNote    string   `json:"db_note,omitempty"`
}

// Verify looks up to limit of the confirmed orders up through GET /v1/orders/{id}
// (conc at a time) and checks each total.
func (o *Orders) Verify(ctx context.Context, client *http.Client, base string, limit, conc int) Verification {
	o.mu.Lock()
	ids := append([]string(nil), o.ids...)
	o.mu.Unlock()
	v := Verification{Confirmed: len(ids), DBCount: -1}
	if limit > 0 && len(ids) > limit {
		// an even sample over the run
		step := float64(len(ids)) / float64(limit)
		s := make([]string, 0, limit)
		for i := range limit {
			s = append(s, ids[int(float64(i)*step)])
		}
		ids = s
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ch := make(chan string)
	for range max(conc, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				ok := o.lookup(ctx, client, base, id)
				mu.Lock()
				v.Checked++
				if ok {
					v.Found++
				} else if len(v.Missing) < 20 {
					v.Missing = append(v.Missing, id)
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
	return v
}

func (o *Orders) lookup(ctx context.Context, client *http.Client, base, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/orders/"+url.PathEscape(id), nil)
	if err != nil {
		return false
	}
	o.mu.Lock()
	req.Header.Set("Order-Receipt", o.receipts[id])
	o.mu.Unlock()
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	var got v1Priced
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		return false
	}
	total, err := got.Total.Centavos()
	o.mu.Lock()
	want := o.totals[id]
	o.mu.Unlock()
	return err == nil && got.ID == id && total == want
}

// KindGenParts is the first page of a generated car's parts.
const KindGenParts = "GET /v1/cars/{generated}/parts"

// GeneratedParts lists the first page (page_size 50) of the parts of a car
// drawn uniformly from the models generated by gencatalog (carID(1..models)),
// so that the catalog cache is exercised at a realistic size. Each answer must
// hold min(50, partsPerModel) parts of that car, ordered by id, with prices,
// at most one chassis, and a next-page token exactly when more parts exist.
func GeneratedParts(base string, models, partsPerModel int, carID func(int) string) load.Scenario {
	return load.Scenario{
		Name: "catalog",
		Targeter: func(t *vegeta.Target) error {
			t.Method, t.Body, t.Header = http.MethodGet, nil, nil
			t.URL = base + "/v1/cars/" + carID(1+rand.IntN(models)) + "/parts?page_size=50"
			return nil
		},
		Kind: func(string) string { return KindGenParts },
		Check: func(r *vegeta.Result) error {
			if err := statusErr(r, http.StatusOK); err != nil {
				return err
			}
			car := strings.TrimPrefix(r.URL, base+"/v1/cars/")
			car = car[:strings.IndexByte(car, '/')]
			var got struct {
				Parts         []v1Part `json:"parts"`
				NextPageToken string   `json:"nextPageToken"`
			}
			if err := json.Unmarshal(r.Body, &got); err != nil {
				return fmt.Errorf("generated parts: %w", err)
			}
			if want := min(50, partsPerModel); len(got.Parts) != want {
				return fmt.Errorf("generated parts: %d on the first page, want %d", len(got.Parts), want)
			}
			if (got.NextPageToken != "") != (partsPerModel > 50) {
				return fmt.Errorf("generated parts: next page token %q with %d parts", got.NextPageToken, partsPerModel)
			}
			chassis, last := 0, int64(0)
			for _, p := range got.Parts {
				id, err := strconv.ParseInt(p.ID, 10, 64)
				if err != nil || id <= last {
					return fmt.Errorf("generated parts: id %q out of order", p.ID)
				}
				last = id
				price, err := p.Price.Centavos()
				if err != nil || price <= 0 || p.CarID != car || !strings.HasPrefix(p.Category, "PART_CATEGORY_") {
					return fmt.Errorf("generated parts: part %+v of %s", p, car)
				}
				if p.Category == shop.Chassis {
					chassis++
				}
			}
			if chassis > 1 {
				return fmt.Errorf("generated parts: %d chassis", chassis)
			}
			return nil
		},
	}
}
