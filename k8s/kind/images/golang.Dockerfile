# Stand-in for golang:1.26 (the root Dockerfile's builder): Debian plus the
# host's Go toolchain (context: go/ = GOROOT) and the host's extra CA
# certificates (ca/), so `go mod download` in a build reaches the module proxy
# exactly as the host does (GOPROXY is the host's too).
FROM carbuild-kind/debian:bookworm
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null 2>&1 || true
COPY go/ /usr/local/go/
ARG GOPROXY GOVERSION
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOPROXY=${GOPROXY} GOTOOLCHAIN=local
WORKDIR /go
