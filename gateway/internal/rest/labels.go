package rest

import (
	"net/http"
	"strconv"
)

// Every label value of the HTTP metrics comes from a fixed set, whatever a
// client sends: each new value of a label is a new series that lives for
// the life of the process, so a raw request method (anything a client makes
// up, e.g. "M123") as a label would let anyone grow /metrics without bound.
// Routes are already templates (or OtherRoute); methods and status codes are
// mapped here.

// OtherMethod labels a request method that is not a standard one.
const OtherMethod = "other"

// methodLabel maps a request method to the standard methods or OtherMethod.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return OtherMethod
}

// codeLabel is the status code as written, when it is a registered one
// (a fixed set of about 60; the rules select classes with code=~"5.."),
// else "other". Only the server chooses codes, but a handler passing on a
// number it did not choose must not be able to add series either.
func codeLabel(code int) string {
	if http.StatusText(code) == "" {
		return "other"
	}
	return strconv.Itoa(code)
}
