package rest

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// The browser-facing defaults of issue #15. The storefront is same-origin,
// so no cross-site page needs to call the API: CORS allows only the origins
// configured, and a POST must declare a JSON body. Browsers send a
// cross-site "simple" request (a form or a fetch with Content-Type
// text/plain, application/x-www-form-urlencoded or multipart/form-data)
// without asking first, so refusing any other content type before the body
// is read stops a page on another site from placing orders with a visitor's
// browser; the earlier system's clients already send application/json.

// corsOrigins checks CORS_ORIGINS: exact origins only, never the "*" that
// would let any site read the answers.
func corsOrigins(origins []string) error {
	for _, o := range origins {
		if strings.TrimSpace(o) == "*" {
			return fmt.Errorf("CORS origin %q: list the origins allowed (scheme://host[:port]); any origin is not allowed", o)
		}
	}
	return nil
}

// requireJSON answers 415 to a POST whose Content-Type is not
// application/json (parameters such as charset are fine). A POST without a
// body needs none (an empty basket quotes to zero): it carries nothing to
// misread, and a browser form always sends a type.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && (ct != "" || r.ContentLength != 0) {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
					"the request body must be JSON, sent with Content-Type: application/json", isCompat(r))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// noStoreOrders marks order answers (they carry what a shopper bought) as
// never to be kept by a browser or a shared cache.
func noStoreOrders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/pagar" || p == "/v1/orders" || strings.HasPrefix(p, "/v1/orders/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}
