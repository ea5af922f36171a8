// Package reference is the bare baseline of the benchmark: a minimal net/http
// server that answers POST /get-pecas with the same JSON as the stack, from
// memory. It decodes the request and encodes the response with encoding/json on
// every call, as a minimal real handler would, so "stack / reference" says how
// much the stack's layers (gRPC hop, interceptors, database or cache) cost on
// this machine, whatever the machine.
package reference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/carbuild/carbuild/loadtest/internal/shop"
)

// Peca is the seed-compatible part (price in reais, as the earlier system's wire format).
type Peca struct {
	ID    string  `json:"id"`
	Nome  string  `json:"nome"`
	Valor float64 `json:"valor"`
}

// PecasResponse is the body of POST /get-pecas.
type PecasResponse struct {
	Pecas []Peca `json:"pecas"`
}

type carro struct {
	Modelo string `json:"modelo"`
	Ano    int32  `json:"ano"`
}

// Handler serves POST /get-pecas and GET /health from the seed catalog held in memory.
func Handler() http.Handler {
	byModel := map[string]PecasResponse{}
	for _, c := range shop.Cars {
		var r PecasResponse
		for _, p := range shop.CompatParts(c.ID) {
			r.Pecas = append(r.Pecas, Peca{ID: p.ID, Nome: p.Name, Valor: float64(p.Price) / 100})
		}
		byModel[strings.ToLower(c.Name)] = r
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /get-pecas", func(w http.ResponseWriter, r *http.Request) {
		var in carro
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, `{"code":400,"status":"INVALID_ARGUMENT","message":"body is not JSON"}`, http.StatusBadRequest)
			return
		}
		resp, ok := byModel[strings.ToLower(in.Modelo)]
		if !ok {
			http.Error(w, `{"code":404,"status":"NOT_FOUND","message":"unknown modelo"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
	mux.Handle("GET /health", healthy)
	return mux
}

// healthy answers GET /health as the stack does when every backend serves.
var healthy = jsonBytes([]byte(`{"status":"healthy"}`))

// jsonBytes answers with b as it is, a JSON document held in memory.
func jsonBytes(b []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// Server is a running reference server.
type Server struct {
	URL string
	srv *http.Server
	err chan error
}

// Start serves the reference handler on a free port of 127.0.0.1.
func Start() (*Server, error) { return Serve(Handler()) }

// Serve serves h as a bare reference on a free port of 127.0.0.1 (the
// default run's Handler, or another scenario's, e.g. the big catalog's).
func Serve(h http.Handler) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		URL: "http://" + l.Addr().String(),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		err: make(chan error, 1),
	}
	go func() { s.err <- s.srv.Serve(l) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown reference server: %w", err)
	}
	if err := <-s.err; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("reference server: %w", err)
	}
	return nil
}
