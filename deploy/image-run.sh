#!/usr/bin/env bash
# Runs tollgate inside the built image the way a pod would, for deploy/image-test.sh:
#   TOLLGATE_CONTAINER=NAME deploy/image-run.sh CONFIG-DIR TOLLGATE-ARGS...
# In buildah's working container NAME (chroot isolation: the host's network, so loopback
# is shared), as uid 65532 with every capability dropped, CONFIG-DIR mounted read-only at
# /config, and each NAME=value word of TOLLGATE_IMAGE_ENV set. buildah run kills its
# command on SIGTERM; a pod's runtime signals it: so SIGTERM and SIGINT are passed to the
# tollgate process itself, found by walking this runner's own process tree. Bounded by
# TOLLGATE_RUN_SECONDS (default 120). The exit status is tollgate's (buildah passes it on).
set -uo pipefail
dir=$1
shift
env_args=()
for kv in ${TOLLGATE_IMAGE_ENV:-}; do env_args+=(--env "$kv"); done

timeout --kill-after=5 "${TOLLGATE_RUN_SECONDS:-120}" \
  buildah --storage-driver vfs run --isolation chroot --user 65532:65532 --cap-drop ALL \
  --volume "$dir:/config:ro" "${env_args[@]}" "$TOLLGATE_CONTAINER" -- /usr/local/bin/tollgate "$@" &
runner=$!

# shellcheck disable=SC2317 # called from the signal traps below
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1"); do
    echo "$child"
    descendants "$child"
  done
}
# shellcheck disable=SC2317 # called from the signal traps below
forward() {
  local pid
  for pid in $(descendants "$runner"); do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tollgate ]; then kill -s "$1" "$pid"; fi
  done
}
trap 'forward TERM' TERM
trap 'forward INT' INT

# wait returns early (status > 128) when a trapped signal arrives; wait again until the
# runner itself has ended, then report its status.
while :; do
  wait "$runner"
  status=$?
  if [ "$status" -lt 128 ] || ! kill -0 "$runner" 2>/dev/null; then break; fi
done
if [ "$status" -ge 128 ]; then
  wait "$runner" 2>/dev/null
  again=$?
  if [ "$again" -ne 127 ]; then status=$again; fi
fi
exit "$status"
