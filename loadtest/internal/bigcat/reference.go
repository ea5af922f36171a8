package bigcat

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/carbuild/carbuild/loadtest/internal/reference"
)

// The answers, in the JSON the stack sends (the gateway's protojson with
// unpopulated fields emitted; int64 minor units as strings).
type (
	v1Money struct {
		CurrencyCode string `json:"currencyCode"`
		MinorUnits   string `json:"minorUnits"`
	}
	v1Part struct {
		ID       string  `json:"id"`
		CarID    string  `json:"carId"`
		Name     string  `json:"name"`
		Category string  `json:"category"`
		Price    v1Money `json:"price"`
	}
	v1Parts struct {
		Parts         []v1Part `json:"parts"`
		NextPageToken string   `json:"nextPageToken"`
	}
	peca struct {
		ID    string  `json:"id"`
		Nome  string  `json:"nome"`
		Valor float64 `json:"valor"`
	}
	pecas struct {
		Pecas []peca `json:"pecas"`
	}
	carro struct {
		Modelo string `json:"modelo"`
		Ano    int32  `json:"ano"`
	}
)

// Page sizes of GET /v1/cars/{id}/parts, as the catalog bounds them.
const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// Handler is the bare reference of the big catalog: GET
// /v1/cars/{car_id}/parts (year, page_size, page_token) and POST /get-pecas
// answered from d with encoding/json on every call, as a minimal real
// handler over an in-memory map would.
func Handler(d *Data) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cars/{car_id}/parts", func(w http.ResponseWriter, r *http.Request) {
		car, ok := d.Car(r.PathValue("car_id"))
		if !ok {
			problem(w, http.StatusNotFound, "car not found")
			return
		}
		q := r.URL.Query()
		if y := q.Get("year"); y != "" {
			n, err := strconv.Atoi(y)
			if c := d.Cars[car]; err != nil || n < c.FirstYear || n > c.LastYear {
				problem(w, http.StatusBadRequest, "year is not a model year of the car")
				return
			}
		}
		size := defaultPageSize
		if s := q.Get("page_size"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxPageSize {
				problem(w, http.StatusBadRequest, "page_size out of range")
				return
			}
			size = n
		}
		from, ok := d.pageAfter(car, q.Get("page_token"))
		if !ok {
			problem(w, http.StatusBadRequest, "page_token is not valid for this car")
			return
		}
		all := d.Parts[car]
		to := min(from+size, len(all))
		resp := v1Parts{Parts: make([]v1Part, 0, to-from)}
		for _, p := range all[from:to] {
			resp.Parts = append(resp.Parts, toV1(d.Cars[car].ID, p))
		}
		if to < len(all) {
			resp.NextPageToken = PageToken(d.Cars[car].ID, all[to-1].ID)
		}
		writeJSON(w, resp)
	})
	mux.HandleFunc("POST /get-pecas", func(w http.ResponseWriter, r *http.Request) {
		var in carro
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			problem(w, http.StatusBadRequest, "body is not JSON")
			return
		}
		resp := pecas{Pecas: []peca{}}
		// An unknown model answers an empty list, as the catalog does.
		if car, ok := d.Model(in.Modelo); ok {
			all := d.Parts[car]
			resp.Pecas = make([]peca, len(all))
			for i, j := range d.ByName[car] {
				resp.Pecas[i] = toPeca(all[j])
			}
		}
		writeJSON(w, resp)
	})
	return mux
}

func toV1(carID string, p Part) v1Part {
	return v1Part{
		ID: strconv.FormatInt(p.ID, 10), CarID: carID, Name: p.Name, Category: CategoryProto(p.Category),
		Price: v1Money{CurrencyCode: p.Currency, MinorUnits: strconv.FormatInt(p.Price, 10)},
	}
}

func toPeca(p Part) peca {
	return peca{ID: strconv.FormatInt(p.ID, 10), Nome: p.Name, Valor: float64(p.Price) / 100}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

// Start serves Handler(d) on a free port of 127.0.0.1.
func Start(d *Data) (*reference.Server, error) { return reference.Serve(Handler(d)) }
