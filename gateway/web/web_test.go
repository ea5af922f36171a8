package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	h := Handler()
	tests := []struct {
		name, method, path string
		wantCode           int
		wantType           string // prefix of Content-Type
		wantBody           string // substring
	}{
		{"index at root", http.MethodGet, "/", http.StatusOK, "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"index by name", http.MethodGet, "/index.html", http.StatusOK, "text/html; charset=utf-8", "<!doctype html>"},
		{"script", http.MethodGet, "/app.js", http.StatusOK, "text/javascript; charset=utf-8", "/v1/quotes"},
		{"stylesheet", http.MethodGet, "/app.css", http.StatusOK, "text/css; charset=utf-8", ":root"},
		{"icon", http.MethodGet, "/favicon.svg", http.StatusOK, "image/svg+xml", "<svg"},
		{"head", http.MethodHead, "/", http.StatusOK, "text/html; charset=utf-8", ""},
		{"unknown file", http.MethodGet, "/nope.js", http.StatusNotFound, "text/plain", "404"},
		{"no directory escape", http.MethodGet, "/../web.go", http.StatusNotFound, "text/plain", ""},
		{"post refused", http.MethodPost, "/", http.StatusMethodNotAllowed, "text/plain", "method not allowed"},
		{"post to unknown path", http.MethodPost, "/nope", http.StatusNotFound, "text/plain", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			res := rec.Result()
			if got := res.StatusCode; got != tt.wantCode {
				t.Fatalf("status: got %d, want %d", got, tt.wantCode)
			}
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tt.wantType) {
				t.Errorf("Content-Type: got %q, want prefix %q", got, tt.wantType)
			}
			if body := rec.Body.String(); !strings.Contains(body, tt.wantBody) {
				t.Errorf("body does not contain %q", tt.wantBody)
			}
			if tt.method == http.MethodHead && rec.Body.Len() != 0 {
				t.Errorf("HEAD body: got %d bytes, want none", rec.Body.Len())
			}
			// Security headers go on every answer, errors included.
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
			csp := res.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-") {
				t.Errorf("Content-Security-Policy %q allows unsafe sources", csp)
			}
			if tt.wantCode == http.StatusMethodNotAllowed {
				if got := res.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow: got %q, want %q", got, "GET, HEAD")
				}
			}
			if tt.wantCode == http.StatusOK {
				if got := res.Header.Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control: got %q, want no-cache", got)
				}
				if res.Header.Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	t.Parallel()
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/app.js", nil))
	etag := rec.Result().Header.Get("ETag")

	req := httptest.NewRequest(http.MethodGet, "/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Code; got != http.StatusNotModified {
		t.Errorf("If-None-Match %s: got status %d, want %d", etag, got, http.StatusNotModified)
	}
}

// TestPageReferences checks that every local file the page links to is
// embedded, and that the page has no inline script or style the CSP would block.
func TestPageReferences(t *testing.T) {
	t.Parallel()
	index, err := fs.ReadFile(Static, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`).FindAllSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("found %d local references in index.html, want at least 3", len(refs))
	}
	for _, m := range refs {
		name := string(m[1])
		if _, err := fs.Stat(Static, "static/"+name); err != nil {
			t.Errorf("index.html references %q, which is not embedded: %v", name, err)
		}
	}
	if regexp.MustCompile(`<script>|<script(?:\s+type="module")?\s*>|<style|\sstyle="|\son[a-z]+="`).Match(index) {
		t.Error("index.html has inline script, style or event handler attributes; the CSP forbids them")
	}
}
