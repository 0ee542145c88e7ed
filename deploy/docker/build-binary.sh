#!/bin/sh
# Builds the disputesync binary the way every release does: static
# (CGO_ENABLED=0, so it runs in a scratch or distroless image), without the
# build machine's paths (-trimpath), stripped (-s -w), and with the version
# from VERSION (default: git describe, else "dev").
# Used by deploy/docker/Dockerfile, .ci/run and the deploy tests.
# Usage: deploy/docker/build-binary.sh [OUTPUT]   (default: ./disputesync)
set -eu
out=${1:-disputesync}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
CGO_ENABLED=0 exec go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/disputesync
