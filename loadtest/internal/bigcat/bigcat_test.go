package bigcat

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/loadtest/internal/gencatalog"
	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// generated loads a small generated catalog (12 models × 45 parts: 3 pages
// of 20 each) and reads it back.
func generated(t *testing.T) (*pgx.Conn, *Data) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := gencatalog.Generate(ctx, conn, gencatalog.Options{Prefix: "gen", Models: 12, Parts: 45, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	d, err := Load(ctx, conn, "gen")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Cars) != 12 || d.Count() != 12*45 {
		t.Fatalf("loaded %d cars, %d parts; want 12, 540", len(d.Cars), d.Count())
	}
	return conn, d
}

// TestReferenceAnswersPassTheChecks drives both scenarios against the
// reference: every answer (any car, year, page) must pass the checks the
// stack's answers go through, so a failed check in a run is the stack's.
func TestReferenceAnswersPassTheChecks(t *testing.T) {
	t.Parallel()
	_, d := generated(t)
	srv := httptest.NewServer(Handler(d))
	t.Cleanup(srv.Close)
	client := load.NewClient(8, 5*time.Second)
	for _, sc := range []load.Scenario{Parts(srv.URL, d), GetPecas(srv.URL, d)} {
		st, err := load.Closed(context.Background(), client, sc, 4, 0, 300*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.OK == 0 || st.Errors != 0 {
			t.Errorf("%s against the reference: %d ok, %d errors: %v", sc.Name, st.OK, st.Errors, st.Reasons)
		}
	}
}

func TestPageAfter(t *testing.T) {
	t.Parallel()
	d := &Data{Cars: []Car{{ID: "gen-1"}}, Parts: [][]Part{{{ID: 10}, {ID: 20}, {ID: 30}, {ID: 40}}}}
	tests := []struct {
		name  string
		token string
		want  int
		ok    bool
	}{
		{"first page", "", 0, true},
		{"after a listed part", PageToken("gen-1", 20), 2, true},
		{"after the last part", PageToken("gen-1", 40), 4, true},
		{"after a part since retired (keyset: the next id up)", PageToken("gen-1", 25), 2, true},
		{"another car's token", PageToken("gen-2", 20), 0, false},
		{"not base64", "%%%", 0, false},
		{"no id", PageToken("gen-1", 0), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := d.pageAfter(0, tt.token)
			if got != tt.want || ok != tt.ok {
				t.Errorf("pageAfter(%q) = %d, %v; want %d, %v", tt.token, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestStatementsAreTheCatalogs keeps Explain's statements in step with the
// catalog's store, which the loadtest module cannot import.
func TestStatementsAreTheCatalogs(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../../catalog/internal/store/store.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{listCarsSQL, findCarSQL, listPartsSQL, getPartsSQL} {
		if !strings.Contains(string(src), "`"+q+"`") {
			t.Errorf("catalog/internal/store/store.go has no statement\n%s", q)
		}
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	conn, d := generated(t)
	es, err := Explain(context.Background(), conn, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 7 {
		t.Fatalf("%d plans, want 7", len(es))
	}
	for _, e := range es {
		if !strings.Contains(e.Plan, "Execution Time") {
			t.Errorf("%s: plan without ANALYZE:\n%s", e.Query, e.Plan)
		}
		if !strings.HasPrefix(e.Query, "list_cars") && !strings.Contains(e.Generic, "$1") {
			t.Errorf("%s: generic plan without parameters:\n%s", e.Query, e.Generic)
		}
	}
	if md := Markdown(es); !strings.Contains(md, "list_parts, last page") {
		t.Errorf("Markdown lacks a plan:\n%s", md)
	}
}

func TestSameJSON(t *testing.T) {
	t.Parallel()
	want := []byte(`{"pecas":[{"id":"21","nome":"Capô gen-1 #6","valor":350.5}],"next":"a b"}`)
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"identical", string(want), true},
		{"spaces after colons and commas (protojson's)", `{"pecas": [{"id": "21", "nome": "Capô gen-1 #6", "valor": 350.5}], "next": "a b"}`, true},
		{"indented, trailing newline", "{\n  \"pecas\": [\n    {\"id\":\"21\",\"nome\":\"Capô gen-1 #6\",\"valor\":350.5}\n  ],\n  \"next\":\"a b\"\n}\n", true},
		{"a space inside a string", `{"pecas":[{"id":"21","nome":"Capô gen-1  #6","valor":350.5}],"next":"a b"}`, false},
		{"a space missing inside a string", `{"pecas":[{"id":"21","nome":"Capô gen-1 #6","valor":350.5}],"next":"ab"}`, false},
		{"another value", `{"pecas":[{"id":"21","nome":"Capô gen-1 #6","valor":350.6}],"next":"a b"}`, false},
		{"another spelling of the same value (left to the full check)", `{"pecas":[{"id":"21","nome":"Cap\u00f4 gen-1 #6","valor":350.5}],"next":"a b"}`, false},
		{"truncated", `{"pecas":[{"id":"21"`, false},
		{"more after the end", string(want) + `{}`, false},
		{"escaped quote does not end the string", `{"pecas":[{"id":"21","nome":"Capô gen-1 #6","valor":350.5}],"next":"a b\" "}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameJSON([]byte(tt.got), want); got != tt.same {
				t.Errorf("sameJSON(%s) = %v, want %v", tt.got, got, tt.same)
			}
		})
	}
	if sameJSON([]byte(`{}`), nil) {
		t.Error("sameJSON accepted an answer when nothing was expected")
	}
}
