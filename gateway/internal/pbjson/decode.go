package pbjson

import (
	"unicode/utf8"

	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// parser reads the request bodies of POST /v1/quotes and POST /v1/orders in
// the shape clients send them: one JSON object, fields by their JSON names,
// strings without escapes, integers as plain digits. It accepts only inputs
// protojson accepts, and then yields the same message; for anything else
// (escapes, proto field names, null, numbers with an exponent, a duplicate or
// unknown field, malformed JSON, trailing data) it reports false and the
// caller hands the same bytes to protojson, so its errors and its lenient
// forms stay exactly protojson's.
type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c.
func (p *parser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// peek skips whitespace and reports whether c comes next, without consuming it.
func (p *parser) peek(c byte) bool {
	p.ws()
	return p.i < len(p.b) && p.b[p.i] == c
}

// str reads a string without escapes or control characters; its bytes must
// be valid UTF-8. The result does not alias the input.
func (p *parser) str() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < ' ':
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return "", false
}

// key reads an object key and its colon; the key must be plain ASCII. The
// result aliases the input: compare it, don't keep it.
func (p *parser) key() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			k := p.b[start:p.i]
			p.i++
			if !p.next(':') {
				return nil, false
			}
			return k, true
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// digits reads -?(0|[1-9][0-9]*) of at most 18 digits (so it cannot
// overflow an int64), not "-0", ending where a JSON number would end.
func (p *parser) digits() (int64, bool) {
	neg := false
	if p.i < len(p.b) && p.b[p.i] == '-' {
		neg = true
		p.i++
	}
	start := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	d := p.i - start
	if d == 0 || d > 18 || (d > 1 && p.b[start] == '0') || (neg && n == 0) {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// number reads a JSON number that is an integer in plain digits.
func (p *parser) number() (int64, bool) {
	p.ws()
	return p.digits()
}

// int64 reads an int64 as protojson writes it (a string of digits) or as a
// plain JSON number.
func (p *parser) int64() (int64, bool) {
	if !p.peek('"') {
		return p.number()
	}
	p.i++
	n, ok := p.digits()
	if !ok || p.i >= len(p.b) || p.b[p.i] != '"' {
		return 0, false
	}
	p.i++
	return n, true
}

// object reads {"k": v, ...}, calling field for each key; field reads the
// value. An empty object is fine.
func (p *parser) object(field func(k []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		k, ok := p.key()
		if !ok || p.peekNull() || !field(k) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// peekNull reports a null value: protojson treats it as the field left
// unset, a case left to protojson.
func (p *parser) peekNull() bool { return p.peek('n') }

// array reads [v, ...], calling elem for each element.
func (p *parser) array(elem func() bool) bool {
	if !p.next('[') {
		return false
	}
	if p.next(']') {
		return true
	}
	for {
		if p.peekNull() || !elem() {
			return false
		}
		if p.next(']') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// end reports whether only whitespace is left.
func (p *parser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *parser) lineItem(li *pricingv1.LineItem) bool {
	var seenID, seenQty bool
	return p.object(func(k []byte) bool {
		switch {
		case string(k) == "partId" && !seenID:
			seenID = true
			var ok bool
			li.PartId, ok = p.str()
			return ok
		case string(k) == "quantity" && !seenQty:
			seenQty = true
			n, ok := p.number()
			if !ok || n < -1<<31 || n > 1<<31-1 {
				return false
			}
			li.Quantity = int32(n)
			return true
		}
		return false
	})
}

func (p *parser) items(out *[]*pricingv1.LineItem) bool {
	return p.array(func() bool {
		li := &pricingv1.LineItem{}
		*out = append(*out, li)
		return p.lineItem(li)
	})
}

func (p *parser) money(m *moneyv1.Money) bool {
	var seenCode, seenUnits bool
	return p.object(func(k []byte) bool {
		switch {
		case string(k) == "currencyCode" && !seenCode:
			seenCode = true
			var ok bool
			m.CurrencyCode, ok = p.str()
			return ok
		case string(k) == "minorUnits" && !seenUnits:
			seenUnits = true
			var ok bool
			m.MinorUnits, ok = p.int64()
			return ok
		}
		return false
	})
}

// createQuote fills r (reset) from b, or reports false.
func createQuote(b []byte, r *pricingv1.CreateQuoteRequest) bool {
	p := parser{b: b}
	var seenItems bool
	ok := p.object(func(k []byte) bool {
		if string(k) == "items" && !seenItems {
			seenItems = true
			return p.items(&r.Items)
		}
		return false
	})
	return ok && p.end()
}

// placeOrder fills r (reset) from b, or reports false.
func placeOrder(b []byte, r *pricingv1.PlaceOrderRequest) bool {
	p := parser{b: b}
	var seenKey, seenItems, seenTotal bool
	ok := p.object(func(k []byte) bool {
		switch {
		case string(k) == "idempotencyKey" && !seenKey:
			seenKey = true
			var ok bool
			r.IdempotencyKey, ok = p.str()
			return ok
		case string(k) == "items" && !seenItems:
			seenItems = true
			return p.items(&r.Items)
		case string(k) == "expectedTotal" && !seenTotal:
			seenTotal = true
			r.ExpectedTotal = &moneyv1.Money{}
			return p.money(r.ExpectedTotal)
		}
		return false
	})
	return ok && p.end()
}
