#!/usr/bin/env bash
# Registry server benchmark (issue 21), release build, as root.
#
#   bench/registry-server.sh      prints a table (append it to bench/RESULTS.md by hand)
#
# Two servers on 127.0.0.1, one after the other, with the same clients:
#   docker-registry   Debian's docker-registry (distribution 2.8), filesystem storage
#   berth             `berth registry serve --root DIR`
# The image: busybox, then random, text, many small files and a tiny layer, about
# IMAGE_MB (default 300) MB uncompressed in 5 gzip layers (as ../shared/bench/peers.sh
# makes its pull/push fixture).
# Figures (medians of RUNS, default 5):
#   push       every blob uploaded in parallel with curl (POST + PUT), then the
#              manifest, into an empty registry: the server's upload throughput
#   pull       the manifest, then every blob fetched in parallel with curl to
#              /dev/null: the server's download throughput
#   berth push / berth pull   berth's own client end to end (pull into an empty store)
#   HEAD p99   `wrk -c 50 -t 2 -d 10s --latency` HEAD of the manifest by tag
#   idle RSS   VmRSS of the server process at rest, after start and after the runs
set -euo pipefail
cd "$(dirname "$0")/.."
SELF=$PWD/bench/registry-server.sh
RUNS=${RUNS:-5}
IMAGE_MB=${IMAGE_MB:-300}
PORT=${PORT:-5071}

if [ "${1:-}" = _srv ]; then # _srv start|stop|reset KIND DIR
  kind=$3; d=$4
  case $2 in
    start)
      mkdir -p "$d/data"
      if [ "$kind" = berth ]; then
        setsid "$BERTH" registry serve --root "$d/data" --addr "127.0.0.1:$PORT" > "$d/log" 2>&1 < /dev/null &
      else
        printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$d" "$PORT" > "$d/config.yml"
        setsid docker-registry serve "$d/config.yml" > "$d/log" 2>&1 < /dev/null &
      fi
      echo $! > "$d/pid"
      for _ in $(seq 1 200); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/" 2>/dev/null && exit 0; sleep 0.05; done
      echo "$kind did not start (see $d/log)" >&2; exit 1 ;;
    stop)
      if [ -s "$d/pid" ]; then
        kill "$(cat "$d/pid")" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$(cat "$d/pid")" 2>/dev/null || break; sleep 0.05; done
        rm -f "$d/pid"
      fi
      exit 0 ;;
    reset) "$SELF" _srv stop "$kind" "$d"; rm -rf "$d/data"; "$SELF" _srv start "$kind" "$d"; exit 0 ;;
  esac
fi
if [ "${1:-}" = _push ]; then # IMG: every blob in parallel, then the manifest
  img=$2; base=http://127.0.0.1:$PORT/v2/bench/big
  up() {
    local loc
    loc=$(curl -fsS -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" { print $2 }')
    case "$loc" in http*) ;; *) loc="http://127.0.0.1:$PORT$loc" ;; esac
    case "$loc" in *\?*) loc="$loc&digest=sha256:$1" ;; *) loc="$loc?digest=sha256:$1" ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$img/blobs/$2" "$loc" -o /dev/null
  }
  pids=()
  while read -r dig _ f; do up "$dig" "$f" & pids+=($!); done < <(cat "$img/layerlist" "$img/configline")
  for p in "${pids[@]}"; do wait "$p"; done
  curl -fsS -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "@$img/manifest.json" "$base/manifests/1" -o /dev/null
  exit 0
fi
if [ "${1:-}" = _pull ]; then # IMG: the manifest, then every blob in parallel
  img=$2; base=http://127.0.0.1:$PORT/v2/bench/big
  curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "$base/manifests/1" -o /dev/null
  pids=()
  while read -r dig _ _; do curl -fsS "$base/blobs/sha256:$dig" -o /dev/null & pids+=($!); done < <(cat "$img/layerlist" "$img/configline")
  for p in "${pids[@]}"; do wait "$p"; done
  exit 0
fi
if [ "${1:-}" = _berth_reset ]; then # empty berth's store
  "$BERTH" rmi -f "127.0.0.1:$PORT/bench/big:1" "127.0.0.1:$PORT/bench/copy:1" > /dev/null 2>&1 || true
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench/registry-server.sh: run as root" >&2; exit 1; }
for c in hyperfine docker-registry curl wrk busybox; do
  command -v $c > /dev/null || { echo "bench/registry-server.sh: needs $c (apt-get install hyperfine docker-registry curl wrk busybox-static)" >&2; exit 1; }
done
cargo build --release -q
export BERTH=$PWD/target/release/berth PORT
tmp=$(mktemp -d /var/tmp/berth-regsrv.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
cleanup() {
  for k in berth docker-registry; do "$SELF" _srv stop "$k" "$tmp/$k" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- the fixture (written as gzip blobs and a Docker schema-2 manifest)
img=$tmp/img
mkdir -p "$img/blobs"
textish() { head -c "$1" /dev/urandom | tr '\000-\377' '[a*16][b*16][c*16][d*16][e*16][f*16][ \n*16][0*16][1*16][2*16][3*16][4*16][5*16][6*16][7*16][x*16]'; }
tar_dir() { (cd "$1" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort \
  | tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf - -T -); }
rnd=$(( IMAGE_MB * 40 / 100 )); txt=$(( IMAGE_MB * 40 / 100 )); small=$(( IMAGE_MB * 20 / 100 ))
mkdir -p "$img/l0/bin" "$img/l0/etc"
cp "$(command -v busybox)" "$img/l0/bin/busybox"; ln -s busybox "$img/l0/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$img/l0/etc/passwd"
mkdir -p "$img/l1/opt/random"
for i in 1 2 3 4; do head -c $(( rnd * 1000000 / 4 )) /dev/urandom > "$img/l1/opt/random/blob$i.bin"; done
mkdir -p "$img/l2/usr/share/text"
for i in $(seq 1 $(( txt * 4 ))); do textish 250000 > "$img/l2/usr/share/text/t$i.txt"; done
mkdir -p "$img/l3/srv/small/bin" "$img/l3/srv/small/txt"
head -c $(( small * 500000 )) /dev/urandom | (cd "$img/l3/srv/small/bin" && split -a 5 -b 8000 - f)
textish $(( small * 500000 )) | (cd "$img/l3/srv/small/txt" && split -a 5 -b 8000 - f)
mkdir -p "$img/l4/etc/app"; echo "registry bench" > "$img/l4/etc/app/version"
: > "$img/diffids"; : > "$img/layerlist"
for l in 0 1 2 3 4; do
  tar_dir "$img/l$l" > "$img/l$l.tar"
  echo "sha256:$(sha256sum < "$img/l$l.tar" | cut -d' ' -f1)" >> "$img/diffids"
  gzip -6 -n -c "$img/l$l.tar" > "$img/blobs/l$l.tar.gz"
  echo "$(sha256sum < "$img/blobs/l$l.tar.gz" | cut -d' ' -f1) $(stat -c %s "$img/blobs/l$l.tar.gz") l$l.tar.gz" >> "$img/layerlist"
  rm -rf "${img:?}/l$l" "$img/l$l.tar"
done
diffids=$(sed 's/.*/"&"/' "$img/diffids" | paste -sd, -)
printf '%s' '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":['"$diffids"']}}' > "$img/blobs/config.json"
cdig=$(sha256sum < "$img/blobs/config.json" | cut -d' ' -f1); csize=$(stat -c %s "$img/blobs/config.json")
layers=$(awk '{ printf "%s{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":%s,\"digest\":\"sha256:%s\"}", (NR>1?",":""), $2, $1 }' "$img/layerlist")
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"sha256:%s"},"layers":[%s]}' \
  "$csize" "$cdig" "$layers" > "$img/manifest.json"
echo "$cdig $csize config.json" > "$img/configline"
gz=$(awk '{ s += $2 } END { print s }' "$img/layerlist")
echo "fixture: $(( gz / 1000000 )) MB gzip in 5 layers" >&2

cat > "$tmp/head.lua" <<'EOF'
wrk.method = "HEAD"
wrk.headers["Accept"] = "application/vnd.docker.distribution.manifest.v2+json"
EOF

med() { python3 -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['results'][0]['median'])" "$1"; }
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$(cat "$1/pid")/status"; }
declare -A R
for k in docker-registry berth; do
  d=$tmp/$k; mkdir -p "$d"
  echo "$k: push, pull (RUNS=$RUNS)" >&2
  "$SELF" _srv start "$k" "$d"; sleep 1
  R[$k.rss0]=$(rss "$d")
  hyperfine -N --runs "$RUNS" --style none --export-json "$d/push.json" \
    --prepare "$SELF _srv reset $k $d" "$SELF _push $img" > /dev/null
  hyperfine -N --runs "$RUNS" --warmup 1 --style none --export-json "$d/pull.json" "$SELF _pull $img" > /dev/null
  R[$k.push]=$(med "$d/push.json"); R[$k.pull]=$(med "$d/pull.json")
  echo "$k: berth pull / push through it" >&2
  hyperfine -N --runs "$RUNS" --style none --export-json "$d/bpull.json" \
    --prepare "$SELF _berth_reset" "$BERTH pull -q 127.0.0.1:$PORT/bench/big:1" > /dev/null
  "$BERTH" tag "127.0.0.1:$PORT/bench/big:1" "127.0.0.1:$PORT/bench/copy:1"
  hyperfine -N --runs "$RUNS" --style none --export-json "$d/bpush.json" \
    --prepare "curl -fsS -o /dev/null -X DELETE http://127.0.0.1:$PORT/v2/bench/copy/manifests/sha256:$(sha256sum < "$img/manifest.json" | cut -d' ' -f1) || true" \
    "$BERTH push -q 127.0.0.1:$PORT/bench/copy:1" > /dev/null
  R[$k.bpull]=$(med "$d/bpull.json"); R[$k.bpush]=$(med "$d/bpush.json")
  "$SELF" _berth_reset
  echo "$k: HEAD with 50 clients" >&2
  wrk -c 50 -t 2 -d 10s --latency -s "$tmp/head.lua" "http://127.0.0.1:$PORT/v2/bench/big/manifests/1" > "$d/wrk.txt"
  R[$k.p99]=$(awk '$1 == "99%" { print $2 }' "$d/wrk.txt")
  R[$k.rps]=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$d/wrk.txt")
  sleep 2
  R[$k.rss1]=$(rss "$d")
  "$SELF" _srv stop "$k" "$d"
done

mbps() { awk -v b="$gz" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", b / a }'; }
echo
echo "Registry server, $(date -u +%F), $(nproc) cores, $(( gz / 1000000 )) MB gzip in 5 layers, RUNS=$RUNS (medians)"
echo
echo "| server | push (parallel curl) | pull (parallel curl) | berth push | berth pull | HEAD p99, 50 clients | HEAD req/s | idle RSS (start / after) |"
echo "|---|---|---|---|---|---|---|---|"
for k in docker-registry berth; do
  printf '| %s | %s s (%s MB/s) | %s s (%s MB/s) | %s s | %s s | %s | %s | %s / %s MiB |\n' "$k" \
    "${R[$k.push]}" "$(mbps "${R[$k.push]}")" "${R[$k.pull]}" "$(mbps "${R[$k.pull]}")" \
    "${R[$k.bpush]}" "${R[$k.bpull]}" "${R[$k.p99]}" "${R[$k.rps]}" "${R[$k.rss0]}" "${R[$k.rss1]}"
done
echo
echo "berth / docker-registry throughput: push $(x "${R[berth.push]}" "${R[docker-registry.push]}"), pull $(x "${R[berth.pull]}" "${R[docker-registry.pull]}"), berth push $(x "${R[berth.bpush]}" "${R[docker-registry.bpush]}"), berth pull $(x "${R[berth.bpull]}" "${R[docker-registry.bpull]}")"
