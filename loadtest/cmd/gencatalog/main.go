// Command gencatalog inserts a large generated catalog into catalog.cars and
// catalog.parts (pgx COPY, one transaction) to exercise caching, pagination
// and queries at a realistic size.
//
//	go run ./loadtest/cmd/gencatalog -models 20 -parts 10          # default: small
//	go run ./loadtest/cmd/gencatalog -models 5000 -parts 100       # 500,000 parts
//	go run ./loadtest/cmd/gencatalog -drop                         # remove them again
//
// Generated cars have slugs "<prefix>-00001", … and names "Model GEN-00001", …;
// each has one chassis (its first part) and parts of every other category,
// with prices in whole reais (centavos in the database) drawn from a PRNG seeded
// by -seed. Running it again with the same options writes nothing; with other
// options it replaces the generated set. The seed catalog is never touched.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/loadtest/internal/gencatalog"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Args[1:]); err != nil {
		log.Error("gencatalog failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("gencatalog", flag.ContinueOnError)
	var o gencatalog.Options
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL)")
	fs.StringVar(&o.Prefix, "prefix", "gen", "slug prefix of the generated cars (lowercase letters and digits)")
	fs.IntVar(&o.Models, "models", 20, "car models to generate")
	fs.IntVar(&o.Parts, "parts", 10, "parts per model (the first is its chassis)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the prices")
	drop := fs.Bool("drop", false, "delete the generated cars and parts with -prefix, then exit")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole operation")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *dbURL == "" {
		return fmt.Errorf("no database: set DATABASE_URL or -database-url")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	if *drop {
		n, err := gencatalog.Drop(ctx, conn, o.Prefix)
		if err != nil {
			return err
		}
		log.Info("dropped the generated catalog", "prefix", o.Prefix, "cars", n)
		return nil
	}
	res, err := gencatalog.Generate(ctx, conn, o)
	if err != nil {
		return err
	}
	switch {
	case res.Unchanged:
		log.Info("generated catalog already present, nothing written", "prefix", o.Prefix, "cars", res.Cars, "parts", res.Parts)
	default:
		log.Info("generated catalog written", "prefix", o.Prefix, "cars", res.Cars, "parts", res.Parts, "replaced", res.Replaced, "took", res.Took.Round(time.Millisecond))
	}
	return nil
}
