package bigcat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/scenario"
)

// PageSize is the page size the benchmark asks for: 100 parts a car make
// 5 pages, so most reads are deep into a car's list (page tokens).
const PageSize = 20

var jsonHeader = http.Header{"Content-Type": []string{"application/json"}}

// Every request carries "#<car>/<page>" in its URL: the client never sends
// a fragment, and the check reads from it what was asked.
func fragment(car, page int) string { return "#" + strconv.Itoa(car) + "/" + strconv.Itoa(page) }

func parseFragment(u string) (car, page int, err error) {
	_, f, ok := strings.Cut(u, "#")
	if !ok {
		return 0, 0, fmt.Errorf("no fragment in %q", u)
	}
	c, p, _ := strings.Cut(f, "/")
	if car, err = strconv.Atoi(c); err != nil {
		return 0, 0, err
	}
	if page, err = strconv.Atoi(p); err != nil {
		return 0, 0, err
	}
	return car, page, nil
}

// year draws one of the car's model years.
func (d *Data) year(car int) int {
	c := d.Cars[car]
	return c.FirstYear + rand.IntN(c.LastYear-c.FirstYear+1)
}

// Parts is GET /v1/cars/{id}/parts?year=&page_size=20[&page_token=] for a
// car, one of its model years and one of its pages drawn uniformly at
// random; every answer must be exactly that page of d.
func Parts(base string, d *Data) load.Scenario {
	return load.Scenario{
		Name: "bigcat parts",
		Targeter: func(t *vegeta.Target) error {
			car := rand.IntN(len(d.Cars))
			page := rand.IntN(d.Pages(car, PageSize))
			u := base + "/v1/cars/" + d.Cars[car].ID + "/parts?year=" + strconv.Itoa(d.year(car)) + "&page_size=" + strconv.Itoa(PageSize)
			if page > 0 {
				u += "&page_token=" + PageToken(d.Cars[car].ID, d.Parts[car][page*PageSize-1].ID)
			}
			t.Method, t.URL, t.Body, t.Header = http.MethodGet, u+fragment(car, page), nil, nil
			return nil
		},
		Kind:  func(string) string { return scenario.KindParts },
		Check: func(r *vegeta.Result) error { return d.checkParts(r) },
	}
}

func (d *Data) checkParts(r *vegeta.Result) error {
	if r.Code != http.StatusOK {
		return statusErr(r)
	}
	car, page, err := parseFragment(r.URL)
	if err != nil {
		return err
	}
	if sameJSON(r.Body, d.expectedParts(car, page)) {
		return nil
	}
	var got v1Parts
	if err := json.Unmarshal(r.Body, &got); err != nil {
		return fmt.Errorf("parts: body is not JSON: %w", err)
	}
	want, next := d.Page(car, page, PageSize)
	id := d.Cars[car].ID
	if len(got.Parts) != len(want) {
		return fmt.Errorf("parts of %s page %d: %d parts, want %d", id, page, len(got.Parts), len(want))
	}
	for i, p := range want {
		if w := toV1(id, p); got.Parts[i] != w {
			return fmt.Errorf("parts of %s page %d: part %d is %+v, want %+v", id, page, i, got.Parts[i], w)
		}
	}
	if got.NextPageToken != next {
		return fmt.Errorf("parts of %s page %d: nextPageToken %q, want %q", id, page, got.NextPageToken, next)
	}
	return nil
}

// GetPecas is POST /get-pecas {"modelo": <name>, "ano": <year>} for a car
// and one of its model years drawn uniformly at random; every answer must
// be every part of that car in the catalog's name order.
func GetPecas(base string, d *Data) load.Scenario {
	u := base + "/get-pecas"
	return load.Scenario{
		Name: "bigcat get-pecas",
		Targeter: func(t *vegeta.Target) error {
			car := rand.IntN(len(d.Cars))
			body, err := json.Marshal(carro{Modelo: d.Cars[car].Name, Ano: int32(d.year(car))})
			if err != nil {
				return err
			}
			t.Method, t.URL, t.Body, t.Header = http.MethodPost, u+fragment(car, 0), body, jsonHeader
			return nil
		},
		Kind:  func(string) string { return scenario.KindGetPecas },
		Check: func(r *vegeta.Result) error { return d.checkPecas(r) },
	}
}

func (d *Data) checkPecas(r *vegeta.Result) error {
	if r.Code != http.StatusOK {
		return statusErr(r)
	}
	car, _, err := parseFragment(r.URL)
	if err != nil {
		return err
	}
	if sameJSON(r.Body, d.expectedPecas(car)) {
		return nil
	}
	var got pecas
	if err := json.Unmarshal(r.Body, &got); err != nil {
		return fmt.Errorf("get-pecas: body is not JSON: %w", err)
	}
	all := d.Parts[car]
	if len(got.Pecas) != len(all) {
		return fmt.Errorf("get-pecas %s: %d pecas, want %d", d.Cars[car].Name, len(got.Pecas), len(all))
	}
	for i, j := range d.ByName[car] {
		g, w := got.Pecas[i], all[j]
		if g.ID != strconv.FormatInt(w.ID, 10) || g.Nome != w.Name || int64(g.Valor*100+0.5) != w.Price {
			return fmt.Errorf("get-pecas %s: peca %d is %+v, want id %d %q valor %.2f", d.Cars[car].Name, i, g, w.ID, w.Name, float64(w.Price)/100)
		}
	}
	return nil
}

func statusErr(r *vegeta.Result) error {
	b := r.Body
	if len(b) > 100 {
		b = b[:100]
	}
	return fmt.Errorf("status %d, want 200: %s", r.Code, bytes.TrimSpace(b))
}

// The checks first compare the body with the expected answer encoded
// compactly, ignoring whitespace outside strings (JSON's only freedom that
// the gateway's protojson uses): a few µs, where decoding 100 pecas costs
// the load generator ~60-100 µs of the CPU it shares with the stack. Only
// a body that differs is decoded and compared field by field, which
// accepts other spellings of the same values and says what is wrong.

func (d *Data) expectedParts(car, page int) []byte {
	want, next := d.Page(car, page, PageSize)
	resp := v1Parts{Parts: make([]v1Part, len(want)), NextPageToken: next}
	for i, p := range want {
		resp.Parts[i] = toV1(d.Cars[car].ID, p)
	}
	return compact(resp)
}

func (d *Data) expectedPecas(car int) []byte {
	all := d.Parts[car]
	resp := pecas{Pecas: make([]peca, len(all))}
	for i, j := range d.ByName[car] {
		resp.Pecas[i] = toPeca(all[j])
	}
	return compact(resp)
}

func compact(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// sameJSON reports whether got is want (compact JSON) with whitespace
// outside strings added.
func sameJSON(got, want []byte) bool {
	if len(want) == 0 {
		return false
	}
	i := 0
	inStr, esc := false, false
	for _, c := range want {
		if !inStr {
			for i < len(got) && isSpace(got[i]) {
				i++
			}
		}
		if i >= len(got) || got[i] != c {
			return false
		}
		i++
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		}
	}
	for i < len(got) && isSpace(got[i]) {
		i++
	}
	return i == len(got)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
