package respcache

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/carbuild/carbuild/catalog/catalogclient"
)

// Header names of the answers.
const (
	// HeaderCache says how the answer was made: hit (from the cache), miss
	// (from the catalog; stored if allowed), bypass (the cache could not be
	// used: not live, or a request body too large to be a key).
	HeaderCache = "X-Cache"
	// HeaderRevision is the catalog revision the answer reflects; the rest
	// package forwards the catalog's "catalog-revision" metadata as it.
	HeaderRevision = "X-Catalog-Revision"
)

// cacheable are the grpc-gateway patterns whose 200 answers depend only on
// the request line (GET) or body (POST) and on the catalog's data.
var cacheable = map[string]string{
	"/v1/cars":                  http.MethodGet,
	"/v1/cars/{car_id=*}/parts": http.MethodGet,
	"/get-pecas":                http.MethodPost,
}

// Middleware is a grpc-gateway middleware: it answers the cacheable routes
// from the cache when it can and stores the catalog's 200 answers when
// allowed. Other routes pass through untouched. It runs after the route has
// been matched, so the metrics middleware before it has already labelled the
// request with its route template, hits included.
func (c *Cache) Middleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		p, ok := runtime.HTTPPattern(r.Context())
		if !ok || cacheable[p.String()] != r.Method {
			next(w, r, params)
			return
		}
		c.serve(w, r, func(w http.ResponseWriter, r *http.Request) { next(w, r, params) })
	}
}

func (c *Cache) serve(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	if !c.Live() {
		c.Bypass()
		bypass(w, r, next)
		return
	}
	var key string
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(c.maxKeyBody)+1))
		rest := io.Reader(r.Body)
		if err != nil {
			rest = errReader{err}
		}
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(body), rest), Closer: r.Body}
		if err != nil || len(body) > c.maxKeyBody {
			c.Bypass()
			bypass(w, r, next)
			return
		}
		key = "POST " + r.URL.RequestURI() + "\x00" + string(body)
	} else {
		key = "GET " + r.URL.RequestURI()
	}

	a, res, fill := c.Get(key)
	switch res {
	case catalogclient.Bypass:
		bypass(w, r, next)
		return
	case catalogclient.Hit:
		h := w.Header()
		for k, vs := range a.metadata {
			h[k] = slices.Clone(vs) // the stored slices are shared by every hit
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		h.Set(HeaderRevision, a.revision)
		h.Set(HeaderCache, res.String())
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(a.body)
		return
	}

	w.Header().Set(HeaderCache, res.String())
	rec := &recorder{ResponseWriter: w, max: c.maxBody}
	next(rec, r)
	if rec.code != http.StatusOK || rec.over {
		return
	}
	h := w.Header()
	revision := h.Get(HeaderRevision)
	rev, ok := catalogclient.Parse(revision)
	if !ok {
		return // the catalog could not vouch for the answer (not live)
	}
	var md http.Header
	for k, vs := range h {
		if strings.HasPrefix(k, runtime.MetadataHeaderPrefix) {
			if md == nil {
				md = http.Header{}
			}
			md[k] = vs
		}
	}
	c.Put(fill, rev, key, answer{contentType: h.Get("Content-Type"), revision: revision, metadata: md, body: rec.buf})
}

func bypass(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	w.Header().Set(HeaderCache, catalogclient.Bypass.String())
	next(w, r)
}

// recorder passes an answer through and keeps a copy of a 200 body of at
// most max bytes.
type recorder struct {
	http.ResponseWriter
	code  int
	wrote bool
	max   int
	buf   []byte
	over  bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	if w.code == http.StatusOK && !w.over {
		if len(w.buf)+len(b) > w.max {
			w.over, w.buf = true, nil
		} else {
			w.buf = append(w.buf, b...)
		}
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// replayBody gives the handler the bytes already read, then the rest.
type replayBody struct {
	io.Reader
	io.Closer
}

// errReader ends a replayed body with the error the first read met.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
