//go:build tools

// Package kindetcd pins etcd for the offline Kind node image: etcd's server
// module has replace directives, so `go install` refuses it; build-bins.sh
// runs `go build go.etcd.io/etcd/server/v3` here instead.
package kindetcd

import _ "go.etcd.io/etcd/server/v3"
