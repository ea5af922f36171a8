package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorBody is every error answer of the REST API.
type ErrorBody struct {
	// Code is the HTTP status code.
	Code int `json:"code"`
	// Status is the gRPC status name, e.g. "INVALID_ARGUMENT".
	Status string `json:"status"`
	// Message says what was wrong.
	Message string `json:"message"`
	// Detail repeats Message for the seed-compatible routes, whose earlier
	// FastAPI clients read "detail".
	Detail string `json:"detail,omitempty"`
}

// writeError writes an error body.
func writeError(w http.ResponseWriter, code int, statusName, msg string, compat bool) {
	b := ErrorBody{Code: code, Status: statusName, Message: msg}
	if compat {
		b.Detail = msg
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}

// errorHandler maps a gRPC status to the HTTP status and JSON body. Statuses
// from the backends pass through with their message, except transport-level
// failures, whose messages would expose internal addresses.
func errorHandler(compat bool) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		if bodyTooLarge(r) {
			writeError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "request body larger than the limit", compat)
			return
		}
		st := status.Convert(err)
		msg := st.Message()
		switch st.Code() {
		case codes.Unavailable:
			msg = "service temporarily unavailable; retry"
		case codes.DeadlineExceeded:
			msg = "the request took too long; retry"
		case codes.Internal, codes.Unknown, codes.DataLoss:
			msg = "internal error"
		case codes.Canceled:
			msg = "request canceled"
		case codes.InvalidArgument:
			msg = queryParamMessage(msg)
		case codes.Unauthenticated:
			// RFC 6750: a 401 names the scheme that would succeed.
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		writeError(w, runtime.HTTPStatusFromCode(st.Code()), statusName(st.Code()), msg, compat)
	}
}

// queryParamError is how grpc-gateway reports a query parameter it could not
// parse: the field, then Go's strconv error.
var queryParamError = regexp.MustCompile(`^parsing field "([^"]+)": strconv\.Parse\w+: parsing "(.*)": (invalid syntax|value out of range)$`)

// queryParamMessage says what was wrong with a query parameter in the API's
// words instead of Go's ("parsing field "year": strconv.ParseInt: parsing
// "abc": invalid syntax" → "query parameter year: "abc" is not a number");
// any other message is returned as it is.
func queryParamMessage(msg string) string {
	m := queryParamError.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if m[3] == "value out of range" {
		return "query parameter " + m[1] + ": " + m[2] + " is out of range"
	}
	return "query parameter " + m[1] + ": \"" + m[2] + "\" is not a number"
}

// routingErrorHandler answers unknown paths and wrong methods in the same shape.
func routingErrorHandler(compat bool) runtime.RoutingErrorHandlerFunc {
	return func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
		switch code {
		case http.StatusMethodNotAllowed:
			writeError(w, code, "METHOD_NOT_ALLOWED", r.Method+" is not allowed on "+r.URL.Path, compat)
		case http.StatusNotFound:
			writeError(w, code, "NOT_FOUND", "no route for "+r.Method+" "+r.URL.Path, compat)
		default:
			writeError(w, code, http.StatusText(code), http.StatusText(code), compat)
		}
	}
}

// statusName spells a code the way Google's JSON errors do: "INVALID_ARGUMENT".
func statusName(c codes.Code) string {
	name := c.String()
	if name == "OK" {
		return name
	}
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
