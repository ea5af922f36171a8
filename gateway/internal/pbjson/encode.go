package pbjson

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	gatewayv1 "github.com/carbuild/carbuild/shared/gen/carbuild/gateway/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
)

// encoder appends protojson's encoding (EmitUnpopulated, single line) of the
// hot messages. Each append returns ok=false where protojson would either
// fail (a string that is not UTF-8, a timestamp out of its range) or write
// something this encoder does not (an enum number without a name): the
// caller then asks protojson itself, so errors and rare shapes are its own.
type encoder struct {
	// sep is what protojson puts after a comma in this binary: "," or ", ".
	// protojson adds the space at random per binary (its detrand package)
	// so that nobody depends on its exact bytes; matching it keeps this
	// encoder's output identical to protojson's in every build.
	sep string
}

func (e encoder) comma(b []byte) []byte { return append(b, e.sep...) }

// str appends s as a JSON string escaped exactly as protojson escapes it:
// '"', '\\' and control characters only (never HTML characters or U+2028).
func str(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return b, false
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\')
		switch c {
		case '"', '\\':
			b = append(b, c)
		case '\b':
			b = append(b, 'b')
		case '\f':
			b = append(b, 'f')
		case '\n':
			b = append(b, 'n')
		case '\r':
			b = append(b, 'r')
		case '\t':
			b = append(b, 't')
		default: // other control characters: \u00XX, lower-case hex
			b = append(b, 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

const hex = "0123456789abcdef"

// name appends a field name and its colon (names are ASCII, never escaped).
func name(b []byte, n string) []byte {
	b = append(b, '"')
	b = append(b, n...)
	return append(b, '"', ':')
}

// money: {"currencyCode":"BRL","minorUnits":"874500"}; int64 is a JSON
// string in protojson; an unset message is null.
func (e encoder) money(b []byte, m *moneyv1.Money) ([]byte, bool) {
	if m == nil {
		return append(b, "null"...), true
	}
	b = append(b, '{')
	b = name(b, "currencyCode")
	b, ok := str(b, m.CurrencyCode)
	b = e.comma(b)
	b = name(b, "minorUnits")
	b = append(b, '"')
	b = strconv.AppendInt(b, m.MinorUnits, 10)
	b = append(b, '"', '}')
	return b, ok
}

func (e encoder) quoteLine(b []byte, l *pricingv1.QuoteLine) ([]byte, bool) {
	if l == nil { // a nil element of a list marshals as an empty message
		l = &pricingv1.QuoteLine{}
	}
	b = append(b, '{')
	b = name(b, "partId")
	b, ok1 := str(b, l.PartId)
	b = e.comma(b)
	b = name(b, "name")
	b, ok2 := str(b, l.Name)
	b = e.comma(b)
	b = name(b, "quantity")
	b = strconv.AppendInt(b, int64(l.Quantity), 10)
	b = e.comma(b)
	b = name(b, "unitPrice")
	b, ok3 := e.money(b, l.UnitPrice)
	b = e.comma(b)
	b = name(b, "lineTotal")
	b, ok4 := e.money(b, l.LineTotal)
	return append(b, '}'), ok1 && ok2 && ok3 && ok4
}

func (e encoder) lines(b []byte, ls []*pricingv1.QuoteLine) ([]byte, bool) {
	return list(e, b, ls, e.quoteLine)
}

// list appends xs as a JSON array, each element by elem; ok is false when
// any element's is.
func list[T any](e encoder, b []byte, xs []T, elem func([]byte, T) ([]byte, bool)) ([]byte, bool) {
	b = append(b, '[')
	ok := true
	for i, x := range xs {
		if i > 0 {
			b = e.comma(b)
		}
		var xok bool
		b, xok = elem(b, x)
		ok = ok && xok
	}
	return append(b, ']'), ok
}

// totals appends the three money fields quotes and orders share.
func (e encoder) totals(b []byte, subtotal, shipping, total *moneyv1.Money) ([]byte, bool) {
	b = name(b, "subtotal")
	b, ok1 := e.money(b, subtotal)
	b = e.comma(b)
	b = name(b, "shipping")
	b, ok2 := e.money(b, shipping)
	b = e.comma(b)
	b = name(b, "total")
	b, ok3 := e.money(b, total)
	return b, ok1 && ok2 && ok3
}

func (e encoder) quote(b []byte, q *pricingv1.Quote) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "lines")
	b, ok1 := e.lines(b, q.Lines)
	b = e.comma(b)
	b, ok2 := e.totals(b, q.Subtotal, q.Shipping, q.Total)
	b = e.comma(b)
	b = name(b, "freeShipping")
	b = strconv.AppendBool(b, q.FreeShipping)
	return append(b, '}'), ok1 && ok2
}

func (e encoder) order(b []byte, o *pricingv1.Order) ([]byte, bool) {
	if o == nil {
		o = &pricingv1.Order{}
	}
	b = append(b, '{')
	b = name(b, "id")
	b, ok1 := str(b, o.Id)
	b = e.comma(b)
	b = name(b, "status")
	st, ok2 := pricingv1.OrderStatus_name[int32(o.Status)]
	b = append(b, '"')
	b = append(b, st...)
	b = append(b, '"')
	b = e.comma(b)
	b = name(b, "lines")
	b, ok3 := e.lines(b, o.Lines)
	b = e.comma(b)
	b, ok4 := e.totals(b, o.Subtotal, o.Shipping, o.Total)
	b = e.comma(b)
	b = name(b, "createTime")
	b, ok5 := timestamp(b, o.CreateTime)
	b = e.comma(b)
	b = name(b, "receiptToken")
	b, ok6 := str(b, o.ReceiptToken)
	return append(b, '}'), ok1 && ok2 && ok3 && ok4 && ok5 && ok6
}

func (e encoder) listOrders(b []byte, r *pricingv1.ListOrdersResponse) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "orders")
	b, ok := list(e, b, r.Orders, e.order)
	b = e.comma(b)
	b = name(b, "nextPageToken")
	b, tok := str(b, r.NextPageToken)
	return append(b, '}'), ok && tok
}

// health: {"status":"healthy","services":{"catalog":"SERVING",...}}, the
// map's keys in order as protojson sorts them (by string).
func (e encoder) health(b []byte, h *gatewayv1.HealthResponse) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "status")
	b, ok := str(b, h.Status)
	b = e.comma(b)
	b = name(b, "services")
	b = append(b, '{')
	var keys [8]string
	ks := keys[:0]
	for k := range h.Services {
		ks = append(ks, k)
	}
	sortStrings(ks)
	for i, k := range ks {
		if i > 0 {
			b = e.comma(b)
		}
		var kok, vok bool
		b, kok = str(b, k)
		b = append(b, ':')
		b, vok = str(b, h.Services[k])
		ok = ok && kok && vok
	}
	b = append(b, '}', '}')
	return b, ok
}

// sortStrings is an insertion sort: the maps here have a handful of keys,
// and it allocates nothing.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Timestamp bounds as protojson checks them: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// timestamp appends RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as
// protojson writes a google.protobuf.Timestamp; null when unset.
func timestamp(b []byte, t *timestamppb.Timestamp) ([]byte, bool) {
	if t == nil {
		return append(b, "null"...), true
	}
	secs, nanos := t.Seconds, int64(t.Nanos)
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos > 999999999 {
		return b, false
	}
	b = append(b, '"')
	b = time.Unix(secs, nanos).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000")
	// Drop trailing zero groups: .000000000 → "", .120000000 → .120.
	frac := b[len(b)-9:]
	switch {
	case string(frac) == "000000000":
		b = b[:len(b)-10]
	case string(frac[3:]) == "000000":
		b = b[:len(b)-6]
	case string(frac[6:]) == "000":
		b = b[:len(b)-3]
	}
	return append(b, 'Z', '"'), true
}

// part: {"id":…,"carId":…,"name":…,"category":"PART_CATEGORY_ENGINE","price":{…}};
// a category without a name is left to protojson (it writes the number).
func (e encoder) part(b []byte, p *catalogv1.Part) ([]byte, bool) {
	if p == nil {
		p = &catalogv1.Part{}
	}
	b = append(b, '{')
	b = name(b, "id")
	b, ok1 := str(b, p.Id)
	b = e.comma(b)
	b = name(b, "carId")
	b, ok2 := str(b, p.CarId)
	b = e.comma(b)
	b = name(b, "name")
	b, ok3 := str(b, p.Name)
	b = e.comma(b)
	b = name(b, "category")
	cat, ok4 := catalogv1.PartCategory_name[int32(p.Category)]
	b = append(b, '"')
	b = append(b, cat...)
	b = append(b, '"')
	b = e.comma(b)
	b = name(b, "price")
	b, ok5 := e.money(b, p.Price)
	return append(b, '}'), ok1 && ok2 && ok3 && ok4 && ok5
}

func (e encoder) parts(b []byte, ps []*catalogv1.Part) ([]byte, bool) { return list(e, b, ps, e.part) }

// listParts: GET /v1/cars/{car_id}/parts, a page of parts and the token of
// the next.
func (e encoder) listParts(b []byte, r *catalogv1.ListPartsResponse) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "parts")
	b, ok1 := e.parts(b, r.Parts)
	b = e.comma(b)
	b = name(b, "nextPageToken")
	b, ok2 := str(b, r.NextPageToken)
	return append(b, '}'), ok1 && ok2
}

// batchGetParts: GET /v1/parts:batchGet.
func (e encoder) batchGetParts(b []byte, r *catalogv1.BatchGetPartsResponse) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "parts")
	b, ok := e.parts(b, r.Parts)
	return append(b, '}'), ok
}

// listCars: GET /v1/cars.
func (e encoder) listCars(b []byte, r *catalogv1.ListCarsResponse) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "cars")
	b, ok := list(e, b, r.Cars, e.car)
	return append(b, '}'), ok
}

func (e encoder) car(b []byte, c *catalogv1.Car) ([]byte, bool) {
	if c == nil {
		c = &catalogv1.Car{}
	}
	b = append(b, '{')
	b = name(b, "id")
	b, ok1 := str(b, c.Id)
	b = e.comma(b)
	b = name(b, "name")
	b, ok2 := str(b, c.Name)
	b = e.comma(b)
	b = name(b, "firstYear")
	b = strconv.AppendInt(b, int64(c.FirstYear), 10)
	b = e.comma(b)
	b = name(b, "lastYear")
	b = strconv.AppendInt(b, int64(c.LastYear), 10)
	return append(b, '}'), ok1 && ok2
}

// pecas: POST /get-pecas, the earlier system's answer
// {"pecas":[{"id":"7","nome":"Chassi","valor":8000}]}.
func (e encoder) pecas(b []byte, r *catalogopb.PecasResponse) ([]byte, bool) {
	b = append(b, '{')
	b = name(b, "pecas")
	b, ok := list(e, b, r.Pecas, e.peca)
	return append(b, '}'), ok
}

func (e encoder) peca(b []byte, p *commonpb.Peca) ([]byte, bool) {
	if p == nil {
		p = &commonpb.Peca{}
	}
	b = append(b, '{')
	b = name(b, "id")
	b, ok1 := str(b, p.Id)
	b = e.comma(b)
	b = name(b, "nome")
	b, ok2 := str(b, p.Nome)
	b = e.comma(b)
	b = name(b, "valor")
	b = float64JSON(b, p.Valor)
	return append(b, '}'), ok1 && ok2
}

// float64JSON appends a double as protojson writes it: the shortest form
// that reads back the same, in exponent form below 1e-6 and from 1e21 with
// a two-digit negative exponent trimmed (1e-07 → 1e-7), and NaN and the
// infinities as strings.
func float64JSON(b []byte, f float64) []byte {
	if b, ok := centsJSON(b, f); ok {
		return b
	}
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// centsJSON appends f quickly when it is a whole number of hundredths, as
// the earlier system's prices in reais are (float64(centavos) / 100), and
// reports false otherwise. For such an f the shortest decimal that reads
// back as f is n/100 itself with its trailing zeros cut: f is the double
// nearest to n/100 (the division rounds correctly), and no other decimal of
// at most 15 significant digits is that near, as doubles are 2^-52 apart
// relative to their size and such decimals at least 10^-15. It is what
// strconv writes (TestCentsJSON), without its general shortest-digits
// search.
func centsJSON(b []byte, f float64) ([]byte, bool) {
	const maxCents = 1e15 // |n| < 10^15: at most 15 significant digits
	n := math.Round(f * 100)
	if !(math.Abs(n) < maxCents) || n/100 != f || n == 0 {
		return b, false // zero keeps its sign through strconv
	}
	c := int64(n)
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	if frac := c % 100; frac != 0 {
		b = append(b, '.', byte('0'+frac/10))
		if frac%10 != 0 {
			b = append(b, byte('0'+frac%10))
		}
	}
	return b, true
}
