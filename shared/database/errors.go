package database

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/carbuild/carbuild/shared/errs"
)

// Classify returns err as an errs.Unavailable (retryable) when PostgreSQL
// could not be reached or turned the statement away for lack of resources,
// and err unchanged otherwise: context errors keep their own meaning, and
// any other database error (a constraint, a bad statement) is a bug the
// caller answers as Internal unless it knows better.
func Classify(err error) error {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53": // connection exception, operator intervention, insufficient resources
		default:
			return err
		}
	}
	return errs.Wrap(errs.Unavailable, err, "database unavailable; retry")
}
