package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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
// Every failure is also logged (logFailure), with the full message.
func errorHandler(log *slog.Logger, compat bool) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		if bodyTooLarge(r) {
			writeError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "request body larger than the limit", compat)
			return
		}
		st := status.Convert(err)
		logFailure(ctx, log, r, st)
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

// failureLevel is the level a failed call is logged at, as the backends log
// the calls they answer (grpcserver's callLevel): what the client caused is
// debug, overload and a backend's trouble warn, the rest error.
func failureLevel(c codes.Code) slog.Level {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return slog.LevelWarn
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return slog.LevelError
	default:
		return slog.LevelDebug
	}
}

// logFailure logs a call that failed with st: the route, the gRPC status
// with its full message (the client may get a generic one) and how long the
// request had taken, which tells a deadline from a prompt refusal. Nothing
// is built when the level is off; a nil log logs nothing.
func logFailure(ctx context.Context, log *slog.Logger, r *http.Request, st *status.Status) {
	lvl := failureLevel(st.Code())
	if log == nil || !log.Enabled(ctx, lvl) {
		return
	}
	route, start, ok := routeOf(ctx)
	attrs := []slog.Attr{
		slog.String("http.method", r.Method),
		slog.String("http.route", route),
		slog.String("grpc.code", st.Code().String()),
		slog.String("grpc.error", st.Message()),
	}
	if ok {
		attrs = append(attrs, slog.Float64("time_ms", float64(time.Since(start).Microseconds())/1000))
	}
	log.LogAttrs(ctx, lvl, "request failed", attrs...)
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
