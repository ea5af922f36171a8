package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
)

// readmeTools are the CLIs the README tells users to install, at the same
// versions; they are installed once into a versioned cache folder.
var readmeTools = map[string][]string{
	"grpcurl": {"github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"},
	"goose": {"-tags=no_mysql no_sqlite3 no_mssql no_vertica no_clickhouse no_ydb no_libsql",
		"github.com/pressly/goose/v3/cmd/goose@v3.30.0"},
}

// TestREADMEExamples runs every shell block of the README's "Try it" section
// against the test stack, as written except for the ports (and the database
// URL of the goose block), and checks that each command succeeds, no answer is
// a 5xx, and every answer the README shows in a comment is the answer given.
func TestREADMEExamples(t *testing.T) {
	root, err := stack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(string(readme), "## Try it")
	if len(blocks) < 5 {
		t.Fatalf("found %d shell blocks under 'Try it', want at least 5", len(blocks))
	}
	bin := installTools(t)
	replacer := strings.NewReplacer(
		"127.0.0.1:8000", sys.Addrs.Gateway,
		"127.0.0.1:50051", sys.Addrs.Catalog,
		"127.0.0.1:50052", sys.Addrs.Pricing,
		"127.0.0.1:8010", sys.Addrs.Issuer,
		"postgres://postgres@127.0.0.1:5432/carbuild?sslmode=disable", sys.DatabaseURL,
	)
	for i, block := range blocks {
		script := replacer.Replace(block)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("README block %d failed: %v\n--- block\n%s\n--- output\n%s", i+1, err, block, out)
			continue
		}
		if bytes.Contains(out, []byte(`"code":5`)) || bytes.Contains(out, []byte("ERROR:")) {
			t.Errorf("README block %d answered an error\n--- block\n%s\n--- output\n%s", i+1, block, out)
		}
		compact := strings.Join(strings.Fields(string(out)), "")
		for _, want := range regexp.MustCompile(`(?m)^# (\{.*\})$`).FindAllStringSubmatch(block, -1) {
			if !strings.Contains(compact, strings.Join(strings.Fields(want[1]), "")) {
				t.Errorf("README block %d: output lacks the answer the README shows: %s\n--- output\n%s", i+1, want[1], out)
			}
		}
	}
}

// shellBlocks returns the ```sh blocks between heading and the next "## ".
func shellBlocks(md, heading string) []string {
	start := strings.Index(md, heading+"\n")
	if start < 0 {
		return nil
	}
	section := md[start+len(heading):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

func installTools(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "carbuild", "tools", "readme-grpcurl1.9.3-goose3.30.0")
	for name, args := range readmeTools {
		if _, err := os.Stat(filepath.Join(bin, name)); err == nil {
			continue
		}
		start := time.Now()
		cmd := exec.Command("go", append([]string{"install"}, args...)...)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install %s: %v\n%s", name, err, out)
		}
		t.Logf("installed %s into %s in %s", name, bin, time.Since(start).Round(time.Second))
	}
	return bin
}
