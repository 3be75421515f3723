#!/usr/bin/env bash
# Build tollgate's image with no registry and no container engine daemon:
#   bash deploy/image.sh [IMAGE]        (default localhost/tollgate:<version>)
# A statically linked release binary (glibc crt-static, aws-lc-rs inside), Debian's CA
# bundle (package ca-certificates), /etc/passwd for uid 65532, assembled FROM scratch with
# buildah (vfs storage: no overlay or fuse needed). The same file system as deploy/Dockerfile
# (both use deploy/rootfs.sh). Needs: cargo, buildah, ca-certificates (installed with apt
# when missing and running as root). Prints the image size and the time each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
image=${1:-localhost/tollgate:${version}}
target=x86_64-unknown-linux-gnu
bundle=/etc/ssl/certs/ca-certificates.crt
buildah=(buildah --storage-driver vfs)

need_apt() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  [ -s "$bundle" ] || missing+=(ca-certificates)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "image: installing ${missing[*]} (Debian)"
    timeout 300 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

started=$SECONDS
need_apt

echo "== image: static release binary ($target, crt-static)"
t0=$SECONDS
RUSTFLAGS='-C target-feature=+crt-static' timeout 3000 \
  cargo build --release --locked --target "$target" --bin tollgate
bin=target/$target/release/tollgate
# A static binary has no program interpreter; a dynamic one would not start in the image.
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  echo "image: $bin is dynamically linked" >&2
  exit 1
fi
echo "image: binary $(du -h "$bin" | cut -f1), built in $((SECONDS - t0)) s"

echo "== image: file system"
rootfs=$(mktemp -d /tmp/tollgate-rootfs.XXXXXX)
container=""
cleanup() {
  if [ -n "$container" ]; then "${buildah[@]}" rm "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$rootfs"
}
trap cleanup EXIT
sh deploy/rootfs.sh "$bin" "$bundle" "$rootfs"

echo "== image: assemble FROM scratch with buildah"
t0=$SECONDS
container=$("${buildah[@]}" from --name "tollgate-image-$$" scratch)
"${buildah[@]}" copy --chown 0:0 "$container" "$rootfs/" / >/dev/null
"${buildah[@]}" config \
  --user 65532:65532 \
  --port 8443 --port 9901 \
  --entrypoint '["/usr/local/bin/tollgate"]' \
  --cmd '["run", "-c", "/etc/tollgate/tollgate.yaml"]' \
  --label org.opencontainers.image.title=tollgate \
  --label "org.opencontainers.image.version=${version}" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$container"
"${buildah[@]}" commit --quiet --rm "$container" "$image" >/dev/null
container=""
echo "image: assembled in $((SECONDS - t0)) s"

size=$("${buildah[@]}" images --format '{{.Size}}' "$image" | head -n 1)
echo "image: $image, size $size, total $((SECONDS - started)) s"
