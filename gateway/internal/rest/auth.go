package rest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/shared/auth"
)

// HeaderReceipt carries an anonymous order's receipt token: the answer to
// POST /pagar has it (POST /v1/orders has it in the body as receiptToken),
// and GET /v1/orders/{id} reads an anonymous order only with it.
const HeaderReceipt = "Order-Receipt"

// authenticate verifies a bearer token at the edge, before any backend is
// called: a request without Authorization goes on anonymous; one whose token
// does not verify (expired, wrong audience or issuer, bad signature, not a
// bearer token) is answered 401 here; a verified identity goes on in the
// request's context (auth.FromContext). The Authorization header itself is
// forwarded to the backends (grpc-gateway always does), which verify it again: the
// gateway adds nothing a backend would have to trust.
//
// The verified identity goes into the request's context, where the
// admission guard (lim) finds the subject to limit by. lim also bounds the
// cost of forged tokens: each failure is charged to the sender's address,
// and an address past its budget is answered 429 before its token is
// verified. lim may be nil.
func authenticate(v *auth.Verifier, lim *edge.Guard, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values("Authorization")
		if len(vals) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if wait, ok := lim.MayVerify(r); !ok {
			w.Header().Set("Retry-After", strconv.FormatInt(max(int64(math.Ceil(wait.Seconds())), 1), 10))
			writeError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "too many invalid tokens from this address; retry after the time in Retry-After", isCompat(r))
			return
		}
		err := errors.New("more than one Authorization header")
		var id auth.Identity
		if len(vals) == 1 {
			var raw string
			if raw, _, err = auth.BearerToken(vals[0]); err == nil {
				id, err = v.Verify(r.Context(), raw)
			}
		}
		if err == nil {
			next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), id)))
			return
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "could not verify the token in time; retry", isCompat(r))
			return
		}
		lim.VerifyFailed(r)
		msg := err.Error()
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, strings.ReplaceAll(msg, `"`, `'`)))
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", msg, isCompat(r))
	})
}

// adminPrefix is the path of the catalog management API (operators only).
const adminPrefix = "/v1/admin/"

// operatorsOnly refuses the management API at the edge to callers without
// the operator role (401 anonymous, 403 otherwise), so a shopper's request
// never reaches the catalog; the catalog checks the same token again.
// authenticate must run first. Its answers are never stored by a cache.
func operatorsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, adminPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		id, ok := auth.FromContext(r.Context())
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "catalog management needs an operator's bearer token", false)
		case !id.HasRole(auth.RoleOperator):
			writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "catalog management needs the operator role", false)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
