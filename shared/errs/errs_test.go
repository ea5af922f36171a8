package errs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/shared/errs"
)

func TestStatus(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"invalid", errs.New(errs.InvalidArgument, "year %d is out of range", 1900), codes.InvalidArgument, "year 1900 is out of range"},
		{"not found, wrapped with context", fmt.Errorf("get order: %w", errs.New(errs.NotFound, "order not found")), codes.NotFound, "order not found"},
		{"conflict", errs.New(errs.Conflict, "key reused"), codes.AlreadyExists, "key reused"},
		{"failed precondition", errs.New(errs.FailedPrecondition, "total changed"), codes.FailedPrecondition, "total changed"},
		{"unavailable keeps its cause out", errs.Wrap(errs.Unavailable, cause, "database unavailable; retry"), codes.Unavailable, "database unavailable; retry"},
		{"permission denied", errs.New(errs.PermissionDenied, "admins only"), codes.PermissionDenied, "admins only"},
		{"unauthenticated", errs.New(errs.Unauthenticated, "send a token"), codes.Unauthenticated, "send a token"},
		{"a bare kind keeps its code, not the text around it", fmt.Errorf("%w: part 99 at 10.0.0.7", errs.NotFound), codes.NotFound, "not found"},
		{"classified internal tells nothing", errs.Wrap(errs.Internal, cause, "secret detail"), codes.Internal, "internal error"},
		{"unclassified tells nothing", fmt.Errorf("dial 10.0.0.7:5432: %w", cause), codes.Internal, "internal error"},
		{"deadline", fmt.Errorf("list: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "deadline exceeded"},
		{"canceled", context.Canceled, codes.Canceled, "canceled"},
		{"a status passes through", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted, "slow down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := errs.Status(tt.err)
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Errorf("Status(%v) = %s %q, want %s %q", tt.err, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestChain(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	err := fmt.Errorf("save order: %w", errs.Wrap(errs.Unavailable, cause, "database unavailable"))
	if !errors.Is(err, errs.Unavailable) || errors.Is(err, errs.NotFound) {
		t.Errorf("errors.Is by kind: got Unavailable=%v NotFound=%v, want true false", errors.Is(err, errs.Unavailable), errors.Is(err, errs.NotFound))
	}
	if !errors.Is(err, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.Unavailable {
		t.Errorf("errors.As = %v, want the *Error of kind Unavailable", e)
	}
	if got, want := err.Error(), "save order: database unavailable: unexpected EOF"; got != want {
		t.Errorf("Error() = %q, want %q (the log sees the cause)", got, want)
	}
}

func TestTruncate(t *testing.T) {
	for in, want := range map[string]string{
		"short": "short",
		"0123456789012345678901234567890123456789": "01234567890123456789012345678901…",
	} {
		if got := errs.Truncate(in); got != want {
			t.Errorf("Truncate(%q) = %q, want %q", in, got, want)
		}
	}
}
