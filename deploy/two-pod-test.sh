#!/usr/bin/env bash
# Two pods, end to end, with network namespaces instead of a cluster:
#   bash deploy/two-pod-test.sh
# Namespaces (all created here, removed on exit even after a failure): a "node" holding a
# bridge, and three pods on it with private addresses: server-pod 10.231.0.1 (the legacy
# service on its own 127.0.0.1:8080 and the inbound tollgate on the pod address),
# client-pod 10.231.0.2 (curl and the outbound tollgate, used through HTTP_PROXY), and
# issuer-pod 10.231.0.3 (a development issuer behind a TLS-terminating tollgate), where
# `cargo test --test it -- --ignored two_pod` runs and starts everything.
# Needs root and `ip netns` (iproute2); otherwise it says SKIPPED loudly and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  echo "=================================================================="
  echo "SKIPPED: two-pod test: $*"
  echo "=================================================================="
  exit 0
}
[ "$(id -u)" -eq 0 ] || skip "not root (it creates network namespaces)"
command -v ip >/dev/null || skip "no ip command (iproute2)"
command -v curl >/dev/null || skip "no curl"
command -v python3 >/dev/null || skip "no python3 (the legacy service)"

tag=tg$$
node=$tag-node server=$tag-server client=$tag-client issuer=$tag-issuer
created=()
cleanup() {
  local ns pid
  for ns in "${created[@]}"; do
    # Whatever still runs in a namespace we made was started by this test: stop it.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

if ! ip netns add "$node" 2>/dev/null; then skip "ip netns add was refused"; fi
created+=("$node")
for ns in "$server" "$client" "$issuer"; do
  ip netns add "$ns"
  created+=("$ns")
done
ip -n "$node" link add br0 type bridge
ip -n "$node" link set br0 up
ip -n "$node" link set lo up
address=1
for ns in "$server" "$client" "$issuer"; do
  ip -n "$node" link add "v$address" type veth peer name eth0 netns "$ns"
  ip -n "$node" link set "v$address" master br0 up
  ip -n "$ns" addr add "10.231.0.$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  address=$((address + 1))
done
echo "two-pod: namespaces $server (10.231.0.1), $client (10.231.0.2), $issuer (10.231.0.3) on a bridge in $node"

timeout 1800 cargo test --test it --no-run >/dev/null 2>&1 || timeout 1800 cargo test --test it --no-run
TOLLGATE_TWO_POD="$server $client" timeout 600 \
  ip netns exec "$issuer" cargo test --offline --test it -- --ignored --exact two_pod::two_pods_end_to_end --nocapture
echo "two-pod: passed"
