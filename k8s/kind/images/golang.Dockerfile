# Stand-in for golang:1.26 (the root Dockerfile's builder): Debian plus the
# host's Go toolchain (context: a copy of GOROOT). GOPROXY is the host's, so
# `go mod download` in the build reaches the same module proxy.
FROM carbuild-kind/debian:bookworm
COPY . /usr/local/go
ARG GOPROXY
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPROXY=${GOPROXY} GOTOOLCHAIN=local
WORKDIR /go
