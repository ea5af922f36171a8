// Package web holds the storefront: a static HTML, CSS and JavaScript page,
// embedded in the gateway binary and served at /. The page talks only to the
// gateway's canonical /v1 REST API on the same origin, so there is no second
// server, no build step and no CORS to configure.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Static holds the page's files; static/index.html is served at /.
//
//go:embed static
var Static embed.FS

// contentSecurityPolicy allows the page to load scripts, styles, images and
// fetches from its own origin only, with no inline code, and forbids framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self'; manifest-src 'self'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// contentTypes pins the types of the file kinds the page uses, so they do not
// depend on the host's MIME tables (a module served as text/plain would not run
// under nosniff).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string // strong validator: a hash of body
}

// Handler returns an http.Handler that serves the files of Static at /, with
// index.html at / itself. Every file is sent with "Cache-Control: no-cache"
// and an ETag, so browsers revalidate cheaply and never run a stale script
// after a deploy (the file names are not fingerprinted). Every response,
// 404s included, carries the page's security headers. Only GET and HEAD are
// allowed.
func Handler() http.Handler {
	files, loadErr := load(Static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")

		if loadErr != nil {
			// Unreachable unless the embedded files are broken at build
			// time, which the package tests catch.
			http.Error(w, "storefront unavailable: "+loadErr.Error(), http.StatusInternalServerError)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		// ServeContent answers HEAD, Range and If-None-Match (304).
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

// load reads every file under static/ into memory, keyed by its path
// relative to static/ ("app.js").
func load(fsys fs.FS) (map[string]file, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	files := make(map[string]file)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ext := path.Ext(name)
		ctype, ok := contentTypes[ext]
		if !ok {
			ctype = mime.TypeByExtension(ext)
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		files[name] = file{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["index.html"]; !ok {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	return files, nil
}
