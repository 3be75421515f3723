#!/usr/bin/env bash
# tollgate against nginx, side by side on loopback, as operators run them: each proxy is
# its own process with two workers and its access log on (to a file), driven by wrk with
# the same connections and duration, interleaved over ROUNDS rounds, each proxy's CPU time
# read from /proc before and after every run. Prints one markdown table.
#
#   bash benches/compare.sh            # ROUNDS=5 RUN_SECONDS=8 CONNECTIONS=64
#
# Rows: nginx proxy_pass (the bare reference); tollgate inbound with a repeated RS256 token
# and a role + client + azpacr policy; the same with a different token on (almost) every
# request; nginx adding a static Authorization header (the outbound reference); tollgate
# outbound attaching its cached token. The upstream (and the outbound token endpoint) is a
# third nginx. A benchmark, not a test: CI does not run it. Every process it starts is
# stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
RUN_SECONDS=${RUN_SECONDS:-8}
CONNECTIONS=${CONNECTIONS:-64}
DISTINCT_TOKENS=${DISTINCT_TOKENS:-20000}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet --bin tollgate --example bench_tokens
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(port); BARE=$(port); HEADER=$(port); IN=$(port); OUT=$(port); ADMIN_IN=$(port); ADMIN_OUT=$(port)

./target/release/examples/bench_tokens "$work" "$DISTINCT_TOKENS"
TOKEN=$(head -n1 "$work/tokens.txt")
tail -n +2 "$work/tokens.txt" > "$work/fresh.txt"

nginx_conf() { # name, workers, servers…
  local name=$1 workers=$2; shift 2
  mkdir -p "$work/$name"
  cat > "$work/$name/nginx.conf" <<EOF
daemon off;
worker_processes $workers;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/$name/access.log;
  client_body_temp_path $work/$name/body;
  proxy_temp_path $work/$name/proxy;
  fastcgi_temp_path $work/$name/fastcgi;
  uwsgi_temp_path $work/$name/uwsgi;
  scgi_temp_path $work/$name/scgi;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  $*
}
EOF
  "$NGINX" -c "$work/$name/nginx.conf" -e "$work/$name/error.log" &
  pids+=($!)
}

nginx_conf upstream 1 "server { listen 127.0.0.1:$UP; access_log off; keepalive_requests 1000000;
    location = /token { default_type application/json; return 200 '{\"access_token\":\"eyJhbGciOiJub25lIn0.eyJiIjoxfQ.sig\",\"token_type\":\"Bearer\",\"expires_in\":3600}'; }
    location / { return 200 'ok\n'; } }"
nginx_conf proxy 2 "server { listen 127.0.0.1:$BARE; keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }
  server { listen 127.0.0.1:$HEADER; keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_set_header Authorization \"Bearer eyJhbGciOiJub25lIn0.eyJiIjoxfQ.sig\"; } }"

cat > "$work/inbound.yaml" <<EOF
admin: { listen: 127.0.0.1:$ADMIN_IN }
issuers:
  entra:
    issuer: https://login.microsoftonline.com/7ff95b15-dc21-4ba6-bc92-824856578fc1/v2.0
    jwks_file: keys.json
    audiences: ["api://bench"]
inbound:
  listen: 127.0.0.1:$IN
  upstream: http://127.0.0.1:$UP
  forward_claims: { X-Client-Id: azp, X-Client-Roles: roles }
  routes:
    - name: orders
      match: { path_prefix: /orders }
      require: { roles_any: [Orders.Read], clients: ["2b50a014-f353-4c10-aace-024f19a55569"], azpacr: ["2"] }
EOF
cat > "$work/outbound.yaml" <<EOF
admin: { listen: 127.0.0.1:$ADMIN_OUT }
outbound:
  listen: 127.0.0.1:$OUT
  credentials:
    api:
      token_url: http://127.0.0.1:$UP/token
      client_id: bench
      scopes: ["api://bench/.default"]
      auth: { client_secret: { env: BENCH_SECRET } }
  routes:
    - match: { path_prefix: / }
      upstream: http://127.0.0.1:$UP
      credential: api
EOF
./target/release/tollgate --log-format json run -c "$work/inbound.yaml" 2> "$work/inbound.log" &
pids+=($!); TG_IN=$!
BENCH_SECRET=s ./target/release/tollgate --log-format json run -c "$work/outbound.yaml" 2> "$work/outbound.log" &
pids+=($!); TG_OUT=$!

wait_ready() { for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }
wait_ready "http://127.0.0.1:$UP/"
wait_ready "http://127.0.0.1:$BARE/"
wait_ready "http://127.0.0.1:$ADMIN_IN/readyz"
wait_ready "http://127.0.0.1:$ADMIN_OUT/readyz"
NGINX_PROXY_MASTER=$(cat "$work/proxy/nginx.pid")

cat > "$work/fresh.lua" <<'EOF'
local tokens = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  i = math.random(#tokens)
end
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
EOF

# CPU ticks (user + system) of a process and its children (nginx: master + workers).
ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
peak_kib() {
  local peak=0 p v
  for p in "$1" $(pgrep -P "$1" || true); do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status"); [ "$v" -gt "$peak" ] && peak=$v
  done
  echo "$peak"
}

results="$work/results.tsv"
run() { # round, name, pid, url, wrk args…
  local round=$1 name=$2 pid=$3 url=$4; shift 4
  local before after out
  before=$(ticks "$pid")
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${RUN_SECONDS}s" --latency "$url" "$@")
  after=$(ticks "$pid")
  local requests rps p50 p99 non2xx
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$requests" "$rps" "$p50" "$p99" \
    "$((after - before))" "$(peak_kib "$pid")" "${non2xx:-0}" >> "$results"
}

echo "rounds=$ROUNDS run=${RUN_SECONDS}s connections=$CONNECTIONS; $(nproc) cores; $("$NGINX" -v 2>&1); $(wrk -v 2>&1 | head -1)" >&2
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  run "$round" nginx_bare "$NGINX_PROXY_MASTER" "http://127.0.0.1:$BARE/orders/7"
  run "$round" tollgate_inbound "$TG_IN" "http://127.0.0.1:$IN/orders/7" -H "Authorization: Bearer $TOKEN"
  run "$round" tollgate_inbound_fresh_token "$TG_IN" "http://127.0.0.1:$IN/orders/7" -s "$work/fresh.lua" -- "$work/fresh.txt"
  run "$round" nginx_static_header "$NGINX_PROXY_MASTER" "http://127.0.0.1:$HEADER/orders/7"
  run "$round" tollgate_outbound "$TG_OUT" "http://127.0.0.1:$OUT/orders/7"
done

python3 - "$results" "$(getconf CLK_TCK)" <<'EOF'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
hz = int(sys.argv[2])
def us(v):
    v = v.strip()
    for suffix, f in (("us", 1), ("ms", 1000), ("s", 1e6)):
        if v.endswith(suffix):
            return float(v[: -len(suffix)]) * f
    return float(v)
data = {}
for r, name, req, rps, p50, p99, ticks, peak, non2xx in rows:
    cpu = int(ticks) / hz * 1e6 / max(int(req), 1)
    data.setdefault(name, []).append(dict(round=int(r), rps=float(rps), p50=us(p50), p99=us(p99), cpu=cpu, peak=int(peak) / 1024, bad=int(non2xx)))
ref = {"tollgate_inbound": "nginx_bare", "tollgate_inbound_fresh_token": "nginx_bare", "tollgate_outbound": "nginx_static_header"}
def med(name, key):
    return statistics.median(x[key] for x in data[name])
print("| row | req/s | p50 | p99 | CPU µs/req | peak RSS | CPU vs ref (median, range) | req/s vs ref | p99 vs ref |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ["nginx_bare", "tollgate_inbound", "tollgate_inbound_fresh_token", "nginx_static_header", "tollgate_outbound"]:
    runs = data[name]
    line = f"| {name} | {med(name,'rps'):,.0f} | {med(name,'p50'):.0f} µs | {med(name,'p99'):.0f} µs | {med(name,'cpu'):.1f} | {max(x['peak'] for x in runs):.1f} MiB |"
    if name in ref:
        r = {x["round"]: x for x in data[ref[name]]}
        def ratios(key):
            return sorted(x[key] / r[x["round"]][key] for x in runs)
        def fmt(v):
            return f"{statistics.median(v):.2f}x ({v[0]:.2f}–{v[-1]:.2f})"
        line += f" {fmt(ratios('cpu'))} | {fmt(ratios('rps'))} | {fmt(ratios('p99'))} |"
    else:
        line += " — | — | — |"
    if any(x["bad"] for x in runs):
        line += f" non-2xx: {sum(x['bad'] for x in runs)}"
    print(line)
EOF

# Worst cases and memory, once each after the rounds (issue 11, items 3 and 4).
echo "extras: 256 connections, 10,000 circulating tokens, 2,000 idle connections" >&2
extra() { # name, pid, wrk connections, url, wrk args… → one table row
  local name=$1 pid=$2 conns=$3 url=$4; shift 4
  local before after out requests
  before=$(ticks "$pid")
  out=$(wrk -t1 -c"$conns" -d"${RUN_SECONDS}s" --latency "$url" "$@")
  after=$(ticks "$pid")
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  printf '| %s | %s | %s | %s | %.1f | %s MiB | %s MiB |\n' "$name" "$conns" \
    "$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')" \
    "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
    "$(python3 -c "print($((after - before)) / $(getconf CLK_TCK) * 1e6 / max($requests, 1))")" \
    "$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")" \
    "$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")"
}
head -n 10000 "$work/fresh.txt" > "$work/churn.txt"
cat > "$work/hot_and_churn.lua" <<'EOF2'
local tokens = {}
local i, n = 0, 0
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  i = math.random(#tokens)
end
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. args_hot })
  end
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
EOF2
sed -i "1i args_hot = \"$TOKEN\"" "$work/hot_and_churn.lua"
echo
echo "| extra run | connections | req/s | p99 | CPU µs/req | RSS after | peak RSS so far |"
echo "|---|---|---|---|---|---|---|"
extra "inbound, repeated token" "$TG_IN" 256 "http://127.0.0.1:$IN/orders/7" -H "Authorization: Bearer $TOKEN"
extra "inbound, 10,000 tokens in turn" "$TG_IN" "$CONNECTIONS" "http://127.0.0.1:$IN/orders/7" -s "$work/fresh.lua" -- "$work/churn.txt"
extra "inbound, every other request the hot token, else 10,000 in turn" "$TG_IN" "$CONNECTIONS" "http://127.0.0.1:$IN/orders/7" -s "$work/hot_and_churn.lua" -- "$work/churn.txt"
python3 - "$IN" "$TOKEN" "$TG_IN" <<'EOF2'
import resource, socket, sys, time
port, token, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
request = f"GET /orders/7 HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
conns = []
for _ in range(2000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    conns.append(s)
for s in conns:
    s.settimeout(10)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
time.sleep(1)
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith(("VmRSS", "VmHWM"))]
vals = {l.split(":")[0]: int(l.split()[1]) / 1024 for l in rss}
print(f"| inbound, 2,000 idle keep-alive connections (each after one request) | 2000 | — | — | — | {vals['VmRSS']:.1f} MiB | {vals['VmHWM']:.1f} MiB |")
for s in conns:
    s.close()
EOF2
