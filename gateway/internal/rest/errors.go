package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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

// errorHandler is the one place a gRPC status becomes an HTTP answer: the
// status code (grpc-gateway's mapping), its name and message in the JSON
// body. Statuses from the backends pass through with their message (the
// backends answer only messages meant for clients: package errs), except
// transport-level failures, whose messages would expose internal addresses.
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
		case codes.Unauthenticated:
			// RFC 6750: a 401 names the scheme that would succeed.
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		writeError(w, runtime.HTTPStatusFromCode(st.Code()), code.Code(st.Code()).String(), msg, compat)
	}
}

// queryParser is grpc-gateway's query parser with its number errors said in
// the API's words instead of Go's ("query parameter year: "abc" is not a
// number"); grpc-gateway answers the error's text as an INVALID_ARGUMENT.
type queryParser struct{ runtime.DefaultQueryParser }

// Parse populates msg from the query parameters.
func (p *queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	err := p.DefaultQueryParser.Parse(msg, values, filter)
	var num *strconv.NumError
	if !errors.As(err, &num) {
		return err
	}
	// The parser names the field by its proto name; the client knows the
	// parameter it sent with that value.
	keys := make([]string, 0, len(values))
	for k, vs := range values {
		if slices.Contains(vs, num.Num) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	param := strings.Join(keys, ", ")
	if errors.Is(num.Err, strconv.ErrRange) {
		return fmt.Errorf("query parameter %s: %s is out of range", param, num.Num)
	}
	return fmt.Errorf("query parameter %s: %q is not a number", param, num.Num)
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
