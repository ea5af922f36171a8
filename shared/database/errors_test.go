package database_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/carbuild/carbuild/shared/database"
	"github.com/carbuild/carbuild/shared/errs"
)

func TestClassify(t *testing.T) {
	dial := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	tests := []struct {
		name            string
		err             error
		wantUnavailable bool
	}{
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"admin shutdown", fmt.Errorf("list parts: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"not reached at all", dial, true},
		{"unique violation is a bug, not an outage", &pgconn.PgError{Code: "23505"}, false},
		{"a deadline keeps its meaning", fmt.Errorf("get parts: %w", context.DeadlineExceeded), false},
		{"a cancel keeps its meaning", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := database.Classify(tt.err)
			if errors.Is(got, errs.Unavailable) != tt.wantUnavailable {
				t.Errorf("Classify(%v) = %v, Unavailable %v; want %v", tt.err, got, !tt.wantUnavailable, tt.wantUnavailable)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("Classify(%v) = %v lost the cause", tt.err, got)
			}
		})
	}
	if database.Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}
