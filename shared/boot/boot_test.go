package boot_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
)

func TestStart(t *testing.T) {
	common := config.Common{LogLevel: "error", LogFormat: "text"}
	cfg := slog.GroupValue()
	t.Run("a database service without DATABASE_URL", func(t *testing.T) {
		_, err := boot.Start(context.Background(), boot.Options{Name: "test", Config: valuer(cfg), Common: common, Database: true})
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Fatalf("Start = %v, want an error naming DATABASE_URL", err)
		}
	})
	t.Run("a bad log level", func(t *testing.T) {
		bad := common
		bad.LogLevel = "loud"
		if _, err := boot.Start(context.Background(), boot.Options{Name: "test", Config: valuer(cfg), Common: bad}); err == nil {
			t.Fatal("Start with log level \"loud\" = nil error")
		}
	})
	t.Run("without a database, closers run last first", func(t *testing.T) {
		p, err := boot.Start(context.Background(), boot.Options{Name: "test", Config: valuer(cfg), Common: common})
		if err != nil {
			t.Fatal(err)
		}
		if p.Pool != nil || p.Registry == nil || p.Log == nil || p.Verifier != nil {
			t.Errorf("Process = %+v, want a log and registry, no pool, no verifier (AUTH_ISSUER unset)", p)
		}
		var order []string
		p.Defer(func() { order = append(order, "first") })
		p.Defer(func() { order = append(order, "second") })
		p.Close()
		p.Close()
		if got := strings.Join(order, ","); got != "second,first" {
			t.Errorf("Close ran %q, want second,first once", got)
		}
	})
}

type valuer slog.Value

func (v valuer) LogValue() slog.Value { return slog.Value(v) }
