package rest

import (
	"net/url"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

func TestQueryParser(t *testing.T) {
	tests := []struct{ query, want string }{
		{"pageSize=abc", `query parameter pageSize: "abc" is not a number`},
		{"page_size=abc", `query parameter page_size: "abc" is not a number`},
		{"year=99999999999", `query parameter year: 99999999999 is out of range`},
		{"year=", `query parameter year: "" is not a number`},
		{"year=2020&pageSize=5", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			err = (&queryParser{}).Parse(&catalogv1.ListPartsRequest{}, values, utilities.NewDoubleArray(nil))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Parse(%q) error = %q; want %q", tt.query, got, tt.want)
			}
		})
	}
}
