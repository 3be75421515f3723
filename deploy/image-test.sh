#!/usr/bin/env bash
# Runs the image built by deploy/image.sh, with buildah only (no daemon, no registry):
#   bash deploy/image-test.sh [IMAGE]          (default localhost/tollgate:<version>)
# - the file system: a static binary, the CA bundle, uid 65532 in /etc/passwd, nothing
#   owned by anyone but root and nothing writable by uid 65532 (read-only in practice:
#   buildah run has no --read-only), the image's user, entrypoint and command;
# - inside the image, as uid 65532 with no capabilities: `tollgate --version`,
#   `tollgate check` on every config embedded in deploy/kubernetes, `check --online` on an
#   https issuer (the image's CA bundle is found), an admin-only `run` ready and stopped by
#   SIGTERM with exit 0;
# - `cargo test --test it -- --ignored image`: tollgate run in the image (inbound TLS,
#   RS256 tokens, https upstream on localhost) while the test on the host sends requests
#   over loopback: valid token 200, none 401, /readyz, SIGTERM drains, exit 0.
# PYTHON names an interpreter with PyYAML (validate.py extracts the embedded configs).
# Every process it starts is stopped by its own pid; every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
image=${1:-localhost/tollgate:${version}}
py=${PYTHON:-python3}
buildah=(buildah --storage-driver vfs)
work=$(mktemp -d /tmp/tollgate-image-test.XXXXXX)
chmod 0755 "$work"
container=""
mounted=""
pids=()
cleanup() {
  local pid
  # The runner passes TERM on to tollgate; KILL only if it is still there 5 s later.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$mounted" ]; then "${buildah[@]}" umount "$container" >/dev/null 2>&1 || true; fi
  if [ -n "$container" ]; then "${buildah[@]}" rm "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "image-test: $*" >&2
  exit 1
}
started=$SECONDS

container=$("${buildah[@]}" from --name "tollgate-image-test-$$" "$image")
export TOLLGATE_CONTAINER=$container
in_image() { # CONFIG-DIR TOLLGATE-ARGS...: tollgate in the image, bounded
  TOLLGATE_RUN_SECONDS=60 deploy/image-run.sh "$@"
}

echo "== image-test: file system and configuration"
root=$("${buildah[@]}" mount "$container")
mounted=yes
(cd "$root" && find . | sort) | sed 's/^/  /'
[ -x "$root/usr/local/bin/tollgate" ] || fail "no /usr/local/bin/tollgate"
if readelf -l "$root/usr/local/bin/tollgate" | grep -q 'program interpreter'; then fail "the binary is not static"; fi
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle"
grep -q '^nonroot:x:65532:65532:' "$root/etc/passwd" || fail "no uid 65532 in /etc/passwd"
not_root=$(find "$root" \( ! -uid 0 -o ! -gid 0 \) -print)
[ -z "$not_root" ] || fail "not owned by root: $not_root"
writable=$(find "$root" ! -type l -perm /022 -print)
[ -z "$writable" ] || fail "writable by group or others: $writable"
"${buildah[@]}" umount "$container" >/dev/null
mounted=""
config=$("${buildah[@]}" inspect --type container --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$container")
echo "  user, entrypoint, cmd: $config"
[ "$config" = '65532:65532 [/usr/local/bin/tollgate] [run -c /etc/tollgate/tollgate.yaml]' ] ||
  fail "unexpected image configuration: $config"

echo "== image-test: tollgate --version"
out=$(in_image "$work" --version)
[ "$out" = "tollgate $version" ] || fail "--version said: $out"
echo "  $out"

echo "== image-test: tollgate check on every embedded config"
timeout 120 "$py" deploy/kubernetes/validate.py --configs-only "$work/configs" >/dev/null
chmod -R a+rX "$work/configs"
for file in "$work"/configs/*.yaml; do
  name=$(basename "$file")
  out=$(TOLLGATE_IMAGE_ENV="$(tr '\n' ' ' <"$file.env")" in_image "$work/configs" check -c "/config/$name" 2>&1) ||
    fail "check $name: $out"
  echo "  $name: $out"
done

echo "== image-test: the image's CA bundle is found (check --online, https issuer)"
mkdir -m 0755 "$work/online"
cat >"$work/online/tollgate.yaml" <<'YAML'
issuers:
  entra:
    issuer: https://login.example/v2.0
    discovery_url: https://127.0.0.1:1/v2.0/.well-known/openid-configuration
    audiences: [api]
YAML
chmod 0644 "$work/online/tollgate.yaml"
out=$(in_image "$work/online" check --online -c /config/tollgate.yaml 2>&1) || true
# shellcheck disable=SC2001 # indent every line
sed 's/^/  /' <<<"$out"
grep -q "no trust roots" <<<"$out" && fail "the image's CA bundle was not found"
grep -q "issuer entra: error" <<<"$out" || fail "check --online did not reach the issuer step"

echo "== image-test: admin-only run, ready, SIGTERM, exit 0"
mkdir -m 0755 "$work/admin"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'admin:\n  listen: 127.0.0.1:%s\nshutdown:\n  drain_timeout_seconds: 2\n' "$port" >"$work/admin/tollgate.yaml"
chmod 0644 "$work/admin/tollgate.yaml"
# Started directly (not through in_image) so that $! is the runner's own pid.
TOLLGATE_RUN_SECONDS=60 deploy/image-run.sh "$work/admin" --log-format text run -c /config/tollgate.yaml \
  >"$work/admin.log" 2>&1 &
runner=$!
pids+=("$runner")
ready=""
for _ in $(seq 1 100); do
  if curl -fsS --max-time 1 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=yes; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$work/admin.log" >&2; fail "admin-only run never ready"; }
echo "  /readyz: $(curl -fsS --max-time 2 "http://127.0.0.1:$port/readyz")"
kill -TERM "$runner"
status=0
wait "$runner" || status=$?
pids=()
[ "$status" -eq 0 ] || { cat "$work/admin.log" >&2; fail "admin-only run exited $status after SIGTERM"; }
echo "  stopped with exit 0"

echo "== image-test: inbound in the image, requests from the host (cargo test, ignored test)"
TOLLGATE_IMAGE_RUN="$PWD/deploy/image-run.sh" timeout 900 \
  cargo test --test it -- --ignored --exact image::image_serves_inbound_over_loopback_and_drains_on_sigterm

size=$("${buildah[@]}" images --format '{{.Size}}' "$image" | head -n 1)
echo "image-test: $image ($size) passed in $((SECONDS - started)) s"
