#!/usr/bin/env bash
# Builds the raftis Docker image from this checkout without any image registry:
#
#   docker/build.sh [IMAGE]        # IMAGE defaults to raftis:latest (or $RAFTIS_IMAGE)
#
# No Rust image can be pulled, so the binary is compiled on the host: a static glibc build
# (crt-static, explicit --target so build scripts and proc-macros stay dynamic), without debug
# info and stripped, into target/docker (its own target directory: it never waits on, or
# invalidates, the ordinary target/release build). The Dockerfile copies it into a FROM scratch
# image; it has no `# syntax=` line, so neither the legacy builder nor BuildKit pulls anything.
# Needs cargo, a C compiler (for csrc/ldouble.c) and the docker CLI with a running engine.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-${RAFTIS_IMAGE:-raftis:latest}}
triple=x86_64-unknown-linux-gnu
bin=target/docker/$triple/release/raftis

echo "== cargo: static raftis for $triple into $bin" >&2
CARGO_TARGET_DIR=target/docker \
  CARGO_PROFILE_RELEASE_DEBUG=0 \
  CARGO_PROFILE_RELEASE_STRIP=symbols \
  RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --target "$triple" --bin raftis

# A scratch image has no dynamic loader or libc: refuse anything that is not fully static.
if command -v readelf >/dev/null; then
  if readelf -lW "$bin" | grep -q 'Requesting program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    echo "error: $bin is dynamically linked:" >&2
    readelf -lW -dW "$bin" | grep -E 'interpreter|NEEDED' >&2 || true
    exit 1
  fi
elif ! ldd "$bin" 2>&1 | grep -qE 'not a dynamic executable|statically linked'; then
  echo "error: $bin is dynamically linked:" >&2
  ldd "$bin" >&2 || true
  exit 1
fi
if command -v file >/dev/null; then file "$bin" >&2; fi

# The image's /data comes from this empty directory (so it can be owned by the unprivileged user).
mkdir -p target/docker/empty-data
find target/docker/empty-data -mindepth 1 -delete

echo "== docker build -t $image" >&2
docker build -t "$image" .
echo "== built $image ($(docker image inspect -f '{{.Size}}' "$image") bytes)" >&2
