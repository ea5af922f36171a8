package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
)

// binDir holds the service binaries, built once for every run of the test.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "carbuild-run-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := stack.FindRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := stack.Build(ctx, root, dir); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// bannerWriter keeps what run prints and closes seen once the banner has
// been written, so the test acts at the moment a user would.
type bannerWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
	once sync.Once
}

func (w *bannerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(p, []byte("Car Build is running")) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *bannerWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunBanner runs the run command (the code behind `make run`) on free
// ports and checks that when it prints "Car Build is running" the stack
// really is ready: /readyz 200, /health "healthy", and the seed-compatible
// /calcular, which goes gateway → pricing → catalog, answers 200. Then it
// stops it as Ctrl-C would.
func TestRunBanner(t *testing.T) {
	out := &bannerWriter{seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		// -db= : a throw-away database, dropped when the run stops.
		done <- run(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)), []string{"-free-ports", "-db=", "-bin", binDir, "-skip-build", "-prometheus=false"}, out)
	}()

	const bound = 2 * time.Minute
	select {
	case <-out.seen:
		t.Logf("banner after %s", time.Since(start).Round(time.Millisecond))
	case err := <-done:
		t.Fatalf("run returned before the banner: %v\n%s", err, out)
	case <-time.After(bound):
		t.Fatalf("no banner within %s\n%s", bound, out)
	}

	m := regexp.MustCompile(`storefront\s+(http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the banner names no storefront URL:\n%s", out)
	}
	base := m[1]
	if base == "http://127.0.0.1:8000" {
		t.Fatalf("-free-ports started the gateway on the default port")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	checks := []struct {
		method, path, body string
		want               map[string]any
	}{
		{"GET", "/readyz", "", map[string]any{"status": "ready"}},
		{"GET", "/health", "", map[string]any{"status": "healthy", "services": map[string]any{"catalog": "SERVING", "pricing": "SERVING"}}},
		{"POST", "/calcular", `{"itens":[{"peca":{"id":"7"},"quantidade":1}]}`, map[string]any{"preco": 8000.0, "frete": 20.0, "total": 8020.0}},
	}
	for _, c := range checks {
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s right after the banner: %v", c.method, c.path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || !equalJSON(got, c.want) {
			t.Errorf("%s %s right after the banner: %d %s, want 200 %v", c.method, c.path, resp.StatusCode, body, c.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after Ctrl-C: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not stop within a minute of Ctrl-C")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Errorf("the gateway still answers after run returned")
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
