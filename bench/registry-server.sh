#!/usr/bin/env bash
# Registry server benchmark (issue 21), release build, as root:
# `berth registry serve` against Debian's docker-registry (distribution 2.8),
# the same clients, one sitting.
#
#   bench/registry-server.sh      prints a table (append it to bench/RESULTS.md by hand)
#
#   push    the 5 blobs of a ~236 MB (gzip) image uploaded in parallel with curl
#           (POST + PUT each), then the manifest; into an empty registry each run
#   pull    the 5 blobs downloaded in parallel with curl (to /dev/null)
#   HEAD    `HEAD /v2/<name>/manifests/1`, 20000 requests from 50 concurrent
#           keep-alive connections (ab -i; wrk cannot read HEAD answers): p50, p99
#           (whole milliseconds, ab's resolution), requests per second
#   RSS     the server's resident memory, 15 s idle after start and after the runs
# Environment: RUNS (default 5), CARGO_TARGET_DIR (where the release build goes).
set -euo pipefail
cd "$(dirname "$0")/.."
SELF=$PWD/bench/registry-server.sh
RUNS=${RUNS:-5}

if [ "${1:-}" = _push ]; then # IMG PORT
  img=$2; base=http://127.0.0.1:$3/v2/bench/big
  up() {
    local loc
    loc=$(curl -fsS -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" { print $2 }')
    case "$loc" in http*) ;; *) loc="http://127.0.0.1:$3$loc" ;; esac
    case "$loc" in *\?*) loc="$loc&digest=sha256:$1" ;; *) loc="$loc?digest=sha256:$1" ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$img/$2" "$loc" -o /dev/null
  }
  pids=()
  while read -r dig f; do up "$dig" "$f" "$3" & pids+=($!); done < "$img/list"
  for p in "${pids[@]}"; do wait "$p"; done
  curl -fsS -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "@$img/manifest.json" "$base/manifests/1" -o /dev/null
  exit 0
fi
if [ "${1:-}" = _pull ]; then # IMG PORT
  img=$2; pids=()
  while read -r dig _; do
    curl -fsS -o /dev/null "http://127.0.0.1:$3/v2/bench/big/blobs/sha256:$dig" & pids+=($!)
  done < "$img/list"
  for p in "${pids[@]}"; do wait "$p"; done
  exit 0
fi
if [ "${1:-}" = _start ]; then # KIND DIR PORT: a fresh registry
  kind=$2; d=$3; port=$4
  "$SELF" _stop "$d"
  rm -rf "$d"; mkdir -p "$d"
  case $kind in
    berth) setsid "$BERTH" registry serve --root "$d/data" --addr "127.0.0.1:$port" > /dev/null 2> "$d/log" < /dev/null & ;;
    distribution)
      printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$d" "$port" > "$d.yml"
      setsid docker-registry serve "$d.yml" > "$d/log" 2>&1 < /dev/null & ;;
  esac
  echo $! > "$d.pid"
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && exit 0; sleep 0.05; done
  echo "$kind did not start" >&2; exit 1
fi
if [ "${1:-}" = _stop ]; then # DIR
  if [ -s "$2.pid" ]; then
    p=$(cat "$2.pid"); kill "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    rm -f "$2.pid"
  fi
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench/registry-server.sh: run as root" >&2; exit 1; }
for c in hyperfine docker-registry curl ab; do
  command -v $c >/dev/null || { echo "bench/registry-server.sh: needs $c (apt-get install hyperfine docker-registry curl apache2-utils)" >&2; exit 1; }
done
cargo build --release -q -p cli --bin berth
export BERTH=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
tmp=$(mktemp -d /var/tmp/berth-regserve-bench.XXXXXX)
cleanup() {
  for k in berth distribution; do "$SELF" _stop "$tmp/$k" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# The image: a busybox-sized layer, incompressible data split as the peers
# fixture's layers are (~236 MB, the size of its gzip blobs), a tiny layer.
img=$tmp/img; mkdir -p "$img"; : > "$img/list"
for mb in 1 96 60 79 0; do
  f=l$mb.bin
  if [ "$mb" = 0 ]; then echo "tiny layer" > "$img/$f"; else head -c $((mb * 1000000)) /dev/urandom > "$img/$f"; fi
  echo "$(sha256sum < "$img/$f" | cut -d' ' -f1) $f" >> "$img/list"
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$img/config.json"
echo "$(sha256sum < "$img/config.json" | cut -d' ' -f1) config.json" >> "$img/list"
size() { stat -c %s "$img/$1"; }
layers=$(grep -v config.json "$img/list" | while read -r d f; do printf '{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%s,"digest":"sha256:%s"}\n' "$(size "$f")" "$d"; done | paste -sd, -)
cd_=$(awk '$2 == "config.json" { print $1 }' "$img/list")
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"sha256:%s"},"layers":[%s]}' \
  "$(size config.json)" "$cd_" "$layers" > "$img/manifest.json"
bytes=$(cat "$img"/*.bin "$img/config.json" | wc -c)

rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$(cat "$1.pid")/status"; }
med() { python3 -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['results'][0]['median'])" "$1"; }
port=5071
for k in berth distribution; do
  port=$((port + 1)); d=$tmp/$k
  echo "$k: push, pull, HEAD" >&2
  "$SELF" _start $k "$d" $port
  # Idle: 15 s without a request (the server tidies after 10 s idle).
  sleep 15; idle0=$(rss "$d")
  hyperfine -N --runs "$RUNS" --style none --export-json "$tmp/$k-push.json" \
    --prepare "$SELF _start $k $d $port" "$SELF _push $img $port" > /dev/null
  hyperfine -N --runs "$RUNS" --style none --warmup 1 --export-json "$tmp/$k-pull.json" \
    "$SELF _pull $img $port" > /dev/null
  ab -q -i -k -n 20000 -c 50 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$port/v2/bench/big/manifests/1" > "$tmp/$k-ab.txt"
  sleep 15; idle1=$(rss "$d")
  push=$(med "$tmp/$k-push.json"); pull=$(med "$tmp/$k-pull.json")
  p50=$(awk '$1 == "50%" { print $2 " ms" }' "$tmp/$k-ab.txt"); p99=$(awk '$1 == "99%" { print $2 " ms" }' "$tmp/$k-ab.txt")
  rps=$(awk '/^Requests per second/ { printf "%.0f", $4 }' "$tmp/$k-ab.txt")
  bad=$(awk '/^(Failed requests|Non-2xx responses)/ { s += $NF } END { print s + 0 }' "$tmp/$k-ab.txt")
  [ "$bad" = 0 ] || { cat "$tmp/$k-ab.txt" >&2; echo "$k: $bad HEAD requests failed" >&2; exit 1; }
  echo "$k $push $pull ${p50// /} ${p99// /} $rps $idle0 $idle1" >> "$tmp/rows"
  "$SELF" _stop "$d"
done

mbs() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }
echo
echo "Registry server, $(date -u +%F), $(nproc) cores, $((bytes / 1000000)) MB in 5 layers, RUNS=$RUNS (medians)"
echo
echo "| server | push | pull | HEAD manifest, 50 clients: p50 / p99 | HEAD/s | idle RSS (start / after) |"
echo "|---|---|---|---|---|---|"
while read -r k push pull p50 p99 rps i0 i1; do
  echo "| $k | $push s ($(mbs "$push") MB/s) | $pull s ($(mbs "$pull") MB/s) | $p50 / $p99 | $rps | $i0 / $i1 MiB |"
done < "$tmp/rows"
read -r _ bpush bpull _ < <(grep '^berth ' "$tmp/rows")
read -r _ dpush dpull _ < <(grep '^distribution ' "$tmp/rows")
echo
awk -v a="$dpush" -v b="$bpush" -v c="$dpull" -v d="$bpull" 'BEGIN { printf "berth / distribution throughput: push %.2f×, pull %.2f×\n", a / b, c / d }'
