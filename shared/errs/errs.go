// Package errs is the one error model of Car Build: an error has a Kind (what
// went wrong, as a client can act on it), a message that is safe to send to
// a client, and a cause that is only logged. Domain packages return these;
// Status maps them to a gRPC status, once, in the shared server interceptor
// chain (shared/grpcserver), and the gateway maps that status to HTTP.
//
// A Kind is itself an error, so errors.Is(err, errs.NotFound) asks for the
// kind anywhere in a chain, and errors.Is/As still reach the cause.
package errs

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind says what went wrong. The zero value is Internal: an error nobody
// classified is the server's fault.
type Kind uint8

// The kinds, each answered with the gRPC code of the same name (Conflict:
// AlreadyExists).
const (
	Internal Kind = iota
	InvalidArgument
	NotFound
	Conflict
	FailedPrecondition
	Unavailable
	PermissionDenied
	Unauthenticated
)

var kinds = [...]struct {
	name string
	code codes.Code
}{
	Internal:           {"internal error", codes.Internal},
	InvalidArgument:    {"invalid argument", codes.InvalidArgument},
	NotFound:           {"not found", codes.NotFound},
	Conflict:           {"conflict", codes.AlreadyExists},
	FailedPrecondition: {"failed precondition", codes.FailedPrecondition},
	Unavailable:        {"unavailable", codes.Unavailable},
	PermissionDenied:   {"permission denied", codes.PermissionDenied},
	Unauthenticated:    {"unauthenticated", codes.Unauthenticated},
}

// Error returns the kind's name, e.g. "not found".
func (k Kind) Error() string { return kinds[k].name }

// Code is the gRPC code the kind is answered with.
func (k Kind) Code() codes.Code { return kinds[k].code }

// Error is an error of a Kind with a message for the client and the cause
// behind it for the logs.
type Error struct {
	Kind Kind
	// Msg is what a client is told; it names nothing internal.
	Msg string
	// Err is the cause, or nil.
	Err error
}

// New returns an error of kind k whose client message is
// fmt.Sprintf(format, args...).
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k with client message msg and cause err.
func Wrap(k Kind, err error, msg string) error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// Error is the message, then the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Status returns the gRPC status a server answers for err: the kind's code
// and the client message of an *Error (for a bare Kind in the chain, its
// code and name); DeadlineExceeded or Canceled for a context error; a
// status error a handler made itself as it is; and for
// anything else, or an *Error of kind Internal, Internal with a message that
// tells nothing (the cause is for the server's log).
func Status(err error) *status.Status {
	var e *Error
	var k Kind
	switch {
	case errors.As(err, &e) && e.Kind != Internal:
		return status.New(e.Kind.Code(), e.Msg)
	case e == nil && errors.As(err, &k) && k != Internal:
		// A bare kind wrapped with fmt.Errorf("%w: …"): its code, and only the
		// kind's name, since the rest of the text was not written for clients.
		return status.New(k.Code(), k.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "canceled")
	case e == nil:
		if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
			return s.GRPCStatus()
		}
	}
	return status.New(codes.Internal, "internal error")
}

// Truncate keeps a message that quotes client input short: s cut to 32
// bytes, marked with "…" when cut.
func Truncate(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
