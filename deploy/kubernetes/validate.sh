#!/usr/bin/env bash
# Checks every manifest under deploy/kubernetes/:
#   bash deploy/kubernetes/validate.sh [TOLLGATE-BINARY]      (default target/debug/tollgate)
# validate.py: strict schemas for Kubernetes 1.29 and 1.31 (PyPI kubernetes-validate), what
# the examples promise (native sidecar, probes, securityContext, grace period, Service,
# PodMonitor, PDB, workload identity), no secret value in a ConfigMap. Then `tollgate check`
# on every embedded config, with the variables its pod gets (the workload identity webhook's).
# Last, the checker itself: each known mistake, made in a copy, must be caught.
# PYTHON names an interpreter with kubernetes-validate (default python3). Bounded in time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
bin=${1:-$here/../../target/debug/tollgate}
work=$(mktemp -d /tmp/tollgate-k8s.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== kubernetes: schemas (1.29, 1.31, strict) and the examples' promises"
timeout 300 "$py" "$here/validate.py" --versions 1.29.0,1.31.0 "$work/configs"

echo "== kubernetes: tollgate check on every embedded config"
for config in "$work"/configs/*.yaml; do
  # shellcheck disable=SC2046 # one VAR=value word per line of the .env file
  result=$(env -i PATH="$PATH" $(cat "$config.env") timeout 30 "$bin" check -c "$config" 2>&1) || {
    echo "$result" >&2
    echo "kubernetes: tollgate check failed for $(basename "$config")" >&2
    exit 1
  }
  echo "$(basename "$config"): $result"
done

echo "== kubernetes: the checker catches each known mistake"
mistake() {
  local what=$1 file=$2 from=$3 to=$4 expect=$5 copy="$work/mistake"
  rm -rf "$copy"
  cp -r "$here" "$copy"
  grep -qF -- "$from" "$copy/$file" || { echo "mistake '$what': '$from' not in $file" >&2; exit 1; }
  FROM=$from TO=$to "$py" -c 'import os,sys; p=sys.argv[1]; s=open(p).read(); open(p,"w").write(s.replace(os.environ["FROM"], os.environ["TO"], 1))' "$copy/$file"
  if out=$(timeout 300 "$py" "$copy/validate.py" --versions 1.29.0 "$work/ignored" 2>&1); then
    echo "kubernetes: the checker missed: $what" >&2
    exit 1
  fi
  grep -qF -- "$expect" <<<"$out" || { echo "$out" >&2; echo "kubernetes: '$what' not reported as '$expect'" >&2; exit 1; }
  echo "caught: $what"
}
d=inbound-legacy-service/deployment.yaml
mistake "an unknown field" "$d" "runAsGroup: 65532" "runAsGroupp: 65532" "Additional properties are not allowed"
mistake "an ordinary container instead of a native sidecar" "$d" "restartPolicy: Always            #" "imagePullPolicy: Always            #" "not a native sidecar"
mistake "the config mounted with subPath" "$d" "mountPath: /etc/tollgate, readOnly: true" \
  "mountPath: /etc/tollgate/tollgate.yaml, subPath: tollgate.yaml, readOnly: true" "subPath"
mistake "a grace period below the drain timeout" "$d" "terminationGracePeriodSeconds: 45" \
  "terminationGracePeriodSeconds: 12" "terminationGracePeriodSeconds 12"
mistake "a writable root file system" "$d" "readOnlyRootFilesystem: true" "readOnlyRootFilesystem: false" \
  "readOnlyRootFilesystem"
mistake "a port name that says https for plain HTTP" "$d" "name: http-orders" "name: https-orders" "does not say it serves http"
mistake "the Service targeting the app" inbound-legacy-service/service.yaml "targetPort: http-orders" "targetPort: 8080" \
  "not tollgate's inbound port"
mistake "a secret in a ConfigMap" inbound-legacy-service/configmap.yaml "mode: enforce" \
  "mode: enforce
      password: hunter2" "inline secret"
mistake "a manifest outside every kustomization" inbound-legacy-service/kustomization.yaml "  - poddisruptionbudget.yaml" "" \
  "not listed"
mistake "an app without HTTP_PROXY" outbound-workload-identity/deployment.yaml "name: HTTP_PROXY" "name: HTTPS_PROXY" \
  "no HTTP_PROXY"
echo "kubernetes: all manifests valid"
