# syntax=docker/dockerfile:1
#
# One Dockerfile for every Car Build binary, built from the repository root with
# the Go workspace:
#
#   docker build --build-arg SERVICE=catalog -t carbuild/catalog .              # production
#   docker build --build-arg SERVICE=catalog --target dev -t carbuild/catalog .  # dev (sh, tar)
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg SERVICE=gateway .
#
# SERVICE is catalog, pricing, gateway or migrate. The builder runs on the build
# machine's platform and cross-compiles for TARGETOS/TARGETARCH (no emulation).
# Tilt does not use this file: it compiles on the host and builds
# k8s/image/Dockerfile.tilt from the binary alone.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS builder
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Module files first, so dependencies download only when they change. The
# repository's go.work also lists modules no image needs (dev, loadtest, ...):
# `go work use -r .` drops the ones not copied, so images build with the same
# workspace as a developer machine, minus the modules they do not need.
COPY go.work go.work.su[m] ./
COPY shared/go.mod shared/go.su[m] shared/
COPY catalog/go.mod catalog/go.su[m] catalog/
COPY pricing/go.mod pricing/go.su[m] pricing/
COPY gateway/go.mod gateway/go.su[m] gateway/
COPY migrations/go.mod migrations/go.su[m] migrations/
RUN go work use -r .
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY shared/ shared/
COPY catalog/ catalog/
COPY pricing/ pricing/
COPY gateway/ gateway/
COPY migrations/ migrations/
ARG SERVICE
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    case "${SERVICE:-}" in \
      catalog|pricing|gateway) pkg="./${SERVICE}/cmd/${SERVICE}" ;; \
      migrate) pkg="./migrations/cmd/migrate" ;; \
      *) echo "build arg SERVICE must be catalog, pricing, gateway or migrate, not '${SERVICE:-}'" >&2; exit 2 ;; \
    esac; \
    GOOS="${TARGETOS}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" \
      go build -ldflags="-s -w" -o /out/server "$pkg"

# dev: a small image with sh and tar, so Tilt's live update can sync a new
# binary into /app and restart it (restart.sh is PID 1 and restarts on SIGHUP).
FROM alpine:3.22 AS dev
RUN install -d -o 65532 -g 65532 /app
COPY k8s/image/restart.sh /app/restart.sh
COPY --from=builder --chown=65532:65532 /out/server /app/server
USER 65532:65532
WORKDIR /app
ENTRYPOINT ["/app/restart.sh", "/app/server"]

# prod (the default target): the static binary alone on distroless, non-root.
FROM gcr.io/distroless/static-debian12:nonroot AS prod
COPY --from=builder /out/server /app/server
USER 65532:65532
ENTRYPOINT ["/app/server"]
