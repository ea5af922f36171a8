package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/store"
	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/shared/errs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestListPartsPaginates(t *testing.T) {
	t.Parallel()
	svc := catalog.NewService(store.New(dbtest.NewPool(t)))
	ctx := context.Background()
	var ids []int64
	token, pages := "", 0
	for {
		page, err := svc.ListParts(ctx, catalog.PartsQuery{Car: "Corolla", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range page.Parts {
			ids = append(ids, p.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		token = page.NextPageToken
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || len(ids) != 7 || ids[0] != 14 || ids[6] != 20 {
		t.Errorf("got %d pages with ids %v, want 3 pages with ids 14..20", pages, ids)
	}
}

func TestListPartsErrors(t *testing.T) {
	t.Parallel()
	svc := catalog.NewService(store.New(dbtest.NewPool(t)))
	civicToken := func() string {
		page, err := svc.ListParts(context.Background(), catalog.PartsQuery{Car: "civic", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		return page.NextPageToken
	}()
	tests := []struct {
		name    string
		q       catalog.PartsQuery
		wantErr error
	}{
		{"unknown model", catalog.PartsQuery{Car: "gol"}, errs.NotFound},
		{"empty model", catalog.PartsQuery{Car: "  "}, errs.InvalidArgument},
		{"huge model", catalog.PartsQuery{Car: string(make([]byte, 500))}, errs.InvalidArgument},
		{"year outside the model", catalog.PartsQuery{Car: "civic", Year: 2019}, errs.InvalidArgument},
		{"year inside the model", catalog.PartsQuery{Car: "civic", Year: 2023}, nil},
		{"page size too big", catalog.PartsQuery{Car: "civic", PageSize: 101}, errs.InvalidArgument},
		{"negative page size", catalog.PartsQuery{Car: "civic", PageSize: -1}, errs.InvalidArgument},
		{"garbage token", catalog.PartsQuery{Car: "civic", PageToken: "!!!"}, errs.InvalidArgument},
		{"token of another car", catalog.PartsQuery{Car: "fusca", PageToken: civicToken}, errs.InvalidArgument},
		{"token of the same car", catalog.PartsQuery{Car: "CIVIC", PageToken: civicToken}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.ListParts(context.Background(), tt.q)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("ListParts error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestBatchGetParts(t *testing.T) {
	t.Parallel()
	svc := catalog.NewService(store.New(dbtest.NewPool(t)))
	got, err := svc.BatchGetParts(context.Background(), []string{"20", "1", "7", "1"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	if len(ids) != 4 || ids[0] != 20 || ids[1] != 1 || ids[2] != 7 || ids[3] != 1 {
		t.Errorf("BatchGetParts ids = %v, want [20 1 7 1] (request order)", ids)
	}
	many := make([]string, catalog.MaxBatchIDs+1)
	for i := range many {
		many[i] = "1"
	}
	for _, tc := range []struct {
		name    string
		ids     []string
		wantErr error
	}{
		{"unknown id", []string{"1", "999"}, errs.NotFound},
		{"not a number", []string{"abc"}, errs.InvalidArgument},
		{"zero", []string{"0"}, errs.InvalidArgument},
		{"negative", []string{"-3"}, errs.InvalidArgument},
		{"padded", []string{" 1"}, errs.InvalidArgument},
		{"none", nil, errs.InvalidArgument},
		{"too many", many, errs.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.BatchGetParts(context.Background(), tc.ids); !errors.Is(err, tc.wantErr) {
				t.Errorf("BatchGetParts(%v) error = %v, want %v", tc.ids, err, tc.wantErr)
			}
		})
	}
}

// TestPartsForModel checks the seed-compatible lookup against the seed: every
// part of the model, in the order the earlier system's `ORDER BY nome`
// answered, whatever the test database's collation.
func TestPartsForModel(t *testing.T) {
	t.Parallel()
	svc := catalog.NewService(store.New(dbtest.NewPool(t)))
	tests := []struct {
		model string
		want  []string // "id name"
	}{
		{"FUSCA", []string{"6 Capô", "1 Chassi", "4 Farol Dianteiro", "2 Motor 1.6", "5 Parachoque Traseiro", "3 Rodas Aro 14"}},
		{"civic", []string{"12 Capô Esportivo", "7 Chassi", "10 Farol LED", "8 Motor 2.0 VTEC", "11 Parachoque Esportivo", "9 Rodas Aro 16", "13 Spoiler"}},
		{"Corolla", []string{"19 Capô Aerodinâmico", "14 Chassi", "17 Farol Xenon", "15 Motor 1.8 Hybrid", "18 Parachoque Híbrido", "16 Rodas Aro 15", "20 Sistema Híbrido"}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			parts, err := svc.PartsForModel(context.Background(), tt.model)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range parts {
				got = append(got, fmt.Sprintf("%d %s", p.ID, p.Name))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PartsForModel(%q) (-want +got):\n%s", tt.model, diff)
			}
		})
	}
	if _, err := svc.PartsForModel(context.Background(), "Gol"); !errors.Is(err, errs.NotFound) {
		t.Errorf("PartsForModel(Gol) error = %v, want ErrNotFound", err)
	}
}
