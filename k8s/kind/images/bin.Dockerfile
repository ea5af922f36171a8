# One Go binary (context: a directory holding it) on a distroless stand-in:
# control-plane images, metrics-server, kube-network-policies, Grafana stand-in.
ARG BASE
FROM ${BASE}
ARG SRC DEST BIN_VERSION
LABEL carbuild.kind.bin-version=${BIN_VERSION}
COPY ${SRC} ${DEST}
