// Package buildinfo carries the version and commit stamped into a binary at
// link time:
//
//	go build -ldflags "-X github.com/carbuild/carbuild/shared/buildinfo.Version=v1.2.3 \
//	  -X github.com/carbuild/carbuild/shared/buildinfo.Commit=abc123" ./catalog/cmd/catalog
//
// These are the only package-level variables in the project: the linker can
// set nothing else.
package buildinfo

// Version is the release version, "dev" when not stamped.
var Version = "dev"

// Commit is the source commit, "unknown" when not stamped.
var Commit = "unknown"
