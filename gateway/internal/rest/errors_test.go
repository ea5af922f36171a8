package rest

import "testing"

func TestQueryParamMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{`parsing field "page_size": strconv.ParseInt: parsing "abc": invalid syntax`, `query parameter page_size: "abc" is not a number`},
		{`parsing field "year": strconv.ParseInt: parsing "99999999999": value out of range`, `query parameter year: 99999999999 is out of range`},
		{`parsing field "year": strconv.ParseInt: parsing "": invalid syntax`, `query parameter year: "" is not a number`},
		// Anything else passes through: the backends' reasons are already for people.
		{`car "gol" not found`, `car "gol" not found`},
		{`only one chassis per order, got 2`, `only one chassis per order, got 2`},
		{`parsing field "page_size": something else`, `parsing field "page_size": something else`},
	}
	for _, tt := range tests {
		if got := queryParamMessage(tt.in); got != tt.want {
			t.Errorf("queryParamMessage(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
