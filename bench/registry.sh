#!/usr/bin/env bash
# Registry benchmark (issue 4), release build, as root.
#
#   bench/registry.sh        prints a table (append it to bench/RESULTS.md by hand)
#
# The image: ../shared/bench/peers.sh's pull/push fixture (busybox, then random,
# text, many small files and a tiny layer: ~307 MB in 5 layers, ~236 MB gzip),
# served by Debian's docker-registry on 127.0.0.1.
#   berth / podman / docker   `peers.sh ENGINE pull push` (median of RUNS; pull into
#                             an empty store, push to an empty registry)
#   pull floor                every layer blob fetched in parallel with
#                             `curl | gzip -dc | tar -x` (one pipeline per layer), each
#                             run into a new directory with nothing deleted between runs:
#                             on this machine's ext4, files created soon after a large
#                             `rm -rf` can cost ~0.6 ms each instead of ~0.05 (see
#                             bench/README.md), and the floor should not pay for that
#   push floor                every blob uploaded in parallel with curl (POST + PUT),
#                             then the manifest
# All in one sitting. Environment: RUNS (default 5), ENGINES (default "berth podman docker").
set -euo pipefail
cd "$(dirname "$0")/.."
SELF=$PWD/bench/registry.sh
RUNS=${RUNS:-5}
ENGINES=${ENGINES:-berth podman docker}
PEERS=${PEERS:-$(cd .. && pwd)/shared/bench/peers.sh}
FLOOR_PORT=${FLOOR_PORT:-5057}

if [ "${1:-}" = _reg ]; then # _reg start|stop DIR PORT
  d=$3; port=$4
  case $2 in
    start)
      mkdir -p "$d/data"
      printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$d" "$port" > "$d/config.yml"
      setsid docker-registry serve "$d/config.yml" > "$d/log" 2>&1 < /dev/null &
      echo $! > "$d/pid"
      for _ in $(seq 1 200); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && exit 0; sleep 0.05; done
      echo "registry did not start" >&2; exit 1 ;;
    stop)
      [ -s "$d/pid" ] && { kill "$(cat "$d/pid")" 2>/dev/null || true; sleep 0.2; rm -f "$d/pid"; }
      exit 0 ;;
    reset) "$SELF" _reg stop "$d" "$port"; rm -rf "$d/data"; "$SELF" _reg start "$d" "$port"; exit 0 ;;
  esac
fi
if [ "${1:-}" = _push_floor ]; then # DIR PORT: upload blobs in parallel, then the manifest
  img=$2; port=$3; base=http://127.0.0.1:$port/v2/floor/big
  up() {
    local loc
    loc=$(curl -fsS -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" { print $2 }')
    case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
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
if [ "${1:-}" = _pull_floor ]; then # DIR PORT OUT: every layer in parallel, streamed
  # A new directory per run and nothing deleted in between: see below.
  img=$2; port=$3; out=$4/run-$(date +%s%N); pids=()
  i=0
  while read -r dig _ _; do
    mkdir -p "$out/$i"
    (curl -fsS "http://127.0.0.1:$port/v2/floor/big/blobs/sha256:$dig" | gzip -dc | tar -xf - -C "$out/$i") & pids+=($!)
    i=$((i + 1))
  done < "$img/layerlist"
  for p in "${pids[@]}"; do wait "$p"; done
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench/registry.sh: run as root" >&2; exit 1; }
for c in hyperfine docker-registry curl; do
  command -v $c >/dev/null || { echo "bench/registry.sh: needs $c (apt-get install hyperfine docker-registry curl)" >&2; exit 1; }
done
cargo build --release -q
BERTH=$PWD/target/release/berth
tmp=$(mktemp -d /var/tmp/berth-regbench.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
ptmp=
cleanup() {
  "$SELF" _reg stop "$tmp/floor" "$FLOOR_PORT" || true
  [ -n "$ptmp" ] && rm -rf "$ptmp"
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "berth: peers.sh berth pull push (RUNS=$RUNS)" >&2
KEEP=1 HEAVY_RUNS=$RUNS BERTH=$BERTH bash "$PEERS" berth pull push > "$tmp/berth.txt" 2> "$tmp/berth.err" || true
ptmp=$(sed -n 's/.*tmp=\([^ ]*\).*/\1/p' "$tmp/berth.err" | head -1)
[ -d "$ptmp/img" ] || { cat "$tmp/berth.err" >&2; exit 1; }
: > "$tmp/others.txt"
if [[ " $ENGINES " == *" podman "* ]] && command -v podman >/dev/null; then
  echo "podman: peers.sh podman pull push" >&2
  HEAVY_RUNS=$RUNS bash "$PEERS" podman pull push >> "$tmp/others.txt" 2> "$tmp/podman.err" || true
fi
if [[ " $ENGINES " == *" docker "* ]] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  echo "docker: peers.sh docker pull push" >&2
  HEAVY_RUNS=$RUNS bash "$PEERS" docker pull push >> "$tmp/others.txt" 2> "$tmp/docker.err" || true
fi

echo "floors: parallel curl pipelines" >&2
img=$ptmp/img
mkdir -p "$tmp/floor"
hyperfine -N --runs "$RUNS" --style none --export-json "$tmp/push-floor.json" \
  --prepare "$SELF _reg reset $tmp/floor $FLOOR_PORT" \
  "$SELF _push_floor $img $FLOOR_PORT" > /dev/null
# The registry now holds the image (the last push floor run): pull from it.
hyperfine -N --runs "$RUNS" --style none --export-json "$tmp/pull-floor.json" \
  "$SELF _pull_floor $img $FLOOR_PORT $tmp/untar" > /dev/null

med() { python3 -c "import json,sys; print('%.2f' % json.load(open(sys.argv[1]))['results'][0]['median'])" "$1"; }
val() { awk -v w="$1" -v e="$2" '$1 == w && $2 == e { print $3 }' "$tmp/berth.txt" "$tmp/others.txt"; }
pullf=$(med "$tmp/pull-floor.json"); pushf=$(med "$tmp/push-floor.json")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "FAILED") print "-"; else printf "%.2f×", a / b }'; }
row() { # engine
  local p s; p=$(val pull "$1"); s=$(val push "$1")
  printf '| %s | %s s | %s | %s s | %s |\n' "$1" "${p:-n/a}" "$(ratio "$p" "$pullf")" "${s:-n/a}" "$(ratio "$s" "$pushf")"
}
gz=$(awk '{ s += $2 } END { printf "%.0f", s / 1e6 }' "$img/layerlist")
echo
echo "Registry pull/push, $(date -u +%F), $(nproc) cores, $gz MB gzip in 5 layers, RUNS=$RUNS (medians)"
echo
echo "| engine | pull | pull / floor | push | push / floor |"
echo "|---|---|---|---|---|"
echo "| floor (parallel curl) | $pullf s | 1.00× | $pushf s | 1.00× |"
row berth
grep -q '^pull podman' "$tmp/others.txt" && row podman
grep -q '^pull docker' "$tmp/others.txt" && row docker
bp=$(val pull berth); bs=$(val push berth)
for e in docker podman; do
  op=$(val pull $e); os=$(val push $e)
  [ -n "$op" ] && [ "$op" != FAILED ] && echo && echo "berth/$e: pull $(ratio "$bp" "$op"), push $(ratio "$bs" "$os")"
done
exit 0
