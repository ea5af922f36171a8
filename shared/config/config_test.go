package config_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/carbuild/carbuild/shared/config"
)

// TestSecretNeverShown: a secret taken from the environment or a flag is
// used as it is but shown masked, by -h and in the start-up log.
func TestSecretNeverShown(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://svc:env-pw-1@db/app", "TOKEN": "tok-secret-2"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var url, token string
	set := config.New("test", lookup)
	set.Secret(&url, "database-url", "DATABASE_URL", "", "database")
	set.Secret(&token, "token", "TOKEN", "", "token")

	var help bytes.Buffer
	set.FlagSet().SetOutput(&help)
	if err := set.Parse([]string{"-h"}); err == nil {
		t.Fatal("-h: nil error, want flag.ErrHelp")
	}
	set = config.New("test", lookup)
	set.Secret(&url, "database-url", "DATABASE_URL", "", "database")
	set.Secret(&token, "token", "TOKEN", "", "token")
	if err := set.Parse([]string{"-token", "flag-secret-3"}); err != nil {
		t.Fatal(err)
	}
	if url != env["DATABASE_URL"] || token != "flag-secret-3" {
		t.Errorf("values = %q, %q; want the env URL and the flag token", url, token)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("starting", "config", set)
	for _, shown := range []string{help.String(), logged.String()} {
		for _, secret := range []string{"env-pw-1", "tok-secret-2", "flag-secret-3"} {
			if strings.Contains(shown, secret) {
				t.Errorf("%q shown in:\n%s", secret, shown)
			}
		}
	}
	if !strings.Contains(logged.String(), "postgres://svc:xxxxx@db/app") {
		t.Errorf("log %q: want the URL with its password masked", logged.String())
	}
}
