#!/usr/bin/env bash
# berth compose benchmark (issue: `berth compose`), release build, as root.
#
#   bench/compose.sh         prints a markdown table (append it to bench/RESULTS.md by hand)
#
# Each engine works in a network namespace of its own (`unshare -n`), so that
# neither the host's bridges and nftables nor the other engine are touched;
# berth with a throwaway state root (as bench/run.sh), Docker as a throwaway
# dockerd (Debian's docker.io 20.10, started as bench/build.sh does: own data
# root, exec root, pidfile and socket; no iptables, ip_forward or masquerade)
# driven by Debian's docker-compose 1.29 over DOCKER_HOST=unix://…; its
# cgroups are removed afterwards. The image is the host's static busybox
# (scripts/busybox-rootfs), imported into both engines as bench:busybox.
#
# The stack: db (a named volume), cache, web (busybox httpd) and proxy (httpd);
# web starts after db and cache, proxy after web; every service is a shell
# that exits on SIGTERM (so `down` measures the engine, not a 10 s grace
# period), with a healthcheck `["CMD", "true"]`. Three variants:
#   plain    healthcheck interval 30s (no probe within the measurement), plain
#            depends_on: `up -d` / `down -v` for both engines — the comparable pair
#   healthy  depends_on `condition: service_healthy`, healthcheck interval 100ms
#            (docker-compose 1.29's schema has no `start_interval` and dockerd 20.10
#            ignores it, so a short interval is the only way to make its health
#            gates short): berth `up -d --wait`; docker-compose 1.29 has no `--wait`,
#            so its figure is `up -d` (which waits for db, cache and web to be healthy
#            before starting their dependents) followed by polling the Engine API
#            (curl, every 20 ms) until no container of the project is "starting"
#   issue    berth only: service_healthy gates with the issue's healthcheck
#            (interval 30s, start_period 10s, start_interval 100ms), `up -d --wait`
# Each run is an `up` then a `down -v`, timed separately (bash $EPOCHREALTIME);
# one unmeasured warm-up pair first; medians of RUNS. berth's `up --wait` has
# `--wait-timeout 120`, docker's poll gives up after 120 s too.
# Then a generated 50-service file (environment, labels, healthcheck, a
# depends_on chain, every 5th service with a named volume): `compose config`
# and `compose ps` with the 50 running (hyperfine medians), then FIFTY_RUNS
# timed `up -d` / `down -v` pairs of the 50 (an untimed first pair is the warm-up).
# Environment: RUNS (default 10) up/down pairs; QUICK_RUNS (default 30) hyperfine
# runs of berth's config/ps (docker-compose's: RUNS); FIFTY_RUNS (default 3);
# DOCKER=0 skips Docker; KEEP=1 keeps the temp dir (logs, compose files).
set -euo pipefail
cd "$(dirname "$0")/.."
SELF=$PWD/bench/compose.sh
RUNS=${RUNS:-10}
QUICK_RUNS=${QUICK_RUNS:-30}
FIFTY_RUNS=${FIFTY_RUNS:-3}
DOCKER=${DOCKER:-1}

ms() { python3 -c "import sys; print('%.1f' % ((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }
# median (min–max) in ms of a file of ms, one a line
stats() {
  [ -e "$1" ] || { echo "—"; return; }
  [ -s "$1" ] || { echo "FAILED"; return; }
  python3 -c "
import statistics, sys
v = [float(l) for l in open(sys.argv[1]) if l.strip()]
print('%.0f ms (%.0f–%.0f)' % (statistics.median(v), min(v), max(v)))" "$1"
}
hf_median() { # hyperfine JSON -> median in ms
  python3 -c "import json,sys; print('%.1f' % (json.load(open(sys.argv[1]))['results'][0]['median']*1000))" "$1"
}

# pairs NAME UP DOWN: one warm-up pair (none with NOWARM=1), then RUNS pairs
# (PAIRS= overrides), each timed; writes $out/NAME.up and $out/NAME.down (ms a
# line). A failure ends the series. $RECORD runs between up and down, untimed.
pairs() {
  local name=$1 up=$2 down=$3 t0 t1 t2 t3 i
  : > "$out/$name.up"; : > "$out/$name.down"
  [ -n "${NOWARM:-}" ] || { eval "$up" && eval "$down"; } >>"$out/$name.log" 2>&1 || { eval "$down" >>"$out/$name.log" 2>&1 || true; echo "$name: warm-up failed:" >&2; tail -n 5 "$out/$name.log" >&2; return 0; }
  for i in $(seq 1 "${PAIRS:-$RUNS}"); do
    t0=$EPOCHREALTIME
    if ! eval "$up" >>"$out/$name.log" 2>&1; then
      echo "$name: up failed in run $i:" >&2; tail -n 5 "$out/$name.log" >&2; eval "$down" >>"$out/$name.log" 2>&1 || true; return 0
    fi
    t1=$EPOCHREALTIME
    if [ -n "${RECORD:-}" ]; then $RECORD; fi
    t2=$EPOCHREALTIME
    if ! eval "$down" >>"$out/$name.log" 2>&1; then
      echo "$name: down failed in run $i:" >&2; tail -n 5 "$out/$name.log" >&2; return 0
    fi
    t3=$EPOCHREALTIME
    ms "$t0" "$t1" >> "$out/$name.up"; ms "$t2" "$t3" >> "$out/$name.down"
  done
}
# hf NAME RUNS CMD: hyperfine median -> $out/NAME.hf
hf() {
  local name=$1 runs=$2; shift 2
  if hyperfine -N --warmup 3 --runs "$runs" --export-json "$out/$name.json" "$*" >>"$out/$name.log" 2>&1; then
    hf_median "$out/$name.json" > "$out/$name.hf"
  else echo FAILED > "$out/$name.hf"; echo "$name failed:" >&2; tail -n 5 "$out/$name.log" >&2; fi
}

# ------------------------------------------------ berth, in its own network namespace
if [ "${1:-}" = _berth ]; then
  tmp=$2; out=$tmp/out; f=$tmp/files
  export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
  B=$tmp/berth
  trap '"$B" system reset -f >/dev/null 2>&1 || true' EXIT
  ip link set lo up
  "$B" import "$tmp/rootfs.tar" bench:busybox >/dev/null
  C="$B compose"
  # What this run makes, for the host check at the end (not timed).
  record() { "$B" ps -aq --no-trunc >> "$out/ids" 2>/dev/null || true; ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' >> "$out/links"; }
  RECORD=record
  pairs berth-plain   "$C -f $f/plain.yml -p plain up -d"          "$C -f $f/plain.yml -p plain down -v"
  pairs berth-healthy "$C -f $f/healthy.yml -p healthy up -d --wait --wait-timeout 120" "$C -f $f/healthy.yml -p healthy down -v"
  pairs berth-issue   "$C -f $f/issue.yml -p issue up -d --wait --wait-timeout 120"     "$C -f $f/issue.yml -p issue down -v"
  RECORD=
  hf berth-config50 "$QUICK_RUNS" "$B compose -f $f/s50.yml -p s50 config"
  # The first up/down of the 50 (untimed) is the warm-up, with ps between.
  $C -f $f/s50.yml -p s50 up -d >>"$out/berth-s50.log" 2>&1 || echo "berth: up -d of s50 failed" >&2
  record
  [ "$("$B" ps -q | wc -l)" = 50 ] || echo "berth: $("$B" ps -q | wc -l) containers run after up -d of s50, not 50" >&2
  hf berth-ps50 "$QUICK_RUNS" "$B compose -f $f/s50.yml -p s50 ps"
  $C -f $f/s50.yml -p s50 down -v >>"$out/berth-s50.log" 2>&1 || echo "berth: down -v of s50 failed" >&2
  RECORD=record NOWARM=1 PAIRS=$FIFTY_RUNS pairs berth-s50 "$C -f $f/s50.yml -p s50 up -d" "$C -f $f/s50.yml -p s50 down -v"
  exit 0
fi

# ------------------------------------------ Docker, in its own network namespace
if [ "${1:-}" = _docker ]; then
  tmp=$2; out=$tmp/out; f=$tmp/files; d=$tmp/docker
  ip link set lo up
  /usr/sbin/dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
    -H "unix://$d/docker.sock" --iptables=false --ip6tables=false --ip-forward=false \
    --ip-masq=false --userland-proxy=false >"$d/dockerd.log" 2>&1 &
  stop_dockerd() {
    [ -s "$d/docker.pid" ] || return 0
    kill "$(cat "$d/docker.pid")" 2>/dev/null || true
    for _ in $(seq 1 300); do [ -e "$d/docker.pid" ] || break; sleep 0.1; done
  }
  trap stop_dockerd EXIT
  for _ in $(seq 1 100); do curl -fs --unix-socket "$d/docker.sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.1; done
  export DOCKER_HOST=unix://$d/docker.sock
  /usr/bin/docker import -c 'CMD ["sh"]' "$tmp/rootfs.tar" bench:busybox >/dev/null
  # `up -d` then poll until no container of project $1 is "starting" (all are
  # healthy: an unhealthy one would fail the dependents' gates).
  cat > "$d/up-wait.sh" <<EOF
#!/bin/bash
set -e
docker-compose -f "\$2" -p "\$1" up -d
q='{"label":["com.docker.compose.project='"\$1"'"],"health":["starting"]}'
end=\$((SECONDS + 120))
until [ "\$(curl -fsG --unix-socket '$d/docker.sock' --data-urlencode "filters=\$q" http://d/containers/json)" = "[]" ]; do
  [ \$SECONDS -lt \$end ] || { echo "not healthy after 120 s" >&2; exit 1; }
  sleep 0.02
done
EOF
  C="docker-compose"
  record() { /usr/bin/docker ps -aq --no-trunc >> "$out/ids" 2>/dev/null || true; ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' >> "$out/links"; }
  RECORD=record
  pairs docker-plain   "$C -f $f/plain.yml -p plain up -d"       "$C -f $f/plain.yml -p plain down -v"
  pairs docker-healthy "bash $d/up-wait.sh healthy $f/healthy.yml" "$C -f $f/healthy.yml -p healthy down -v"
  RECORD=
  hf docker-config50 "$RUNS" "$C -f $f/s50.yml -p s50 config"
  $C -f $f/s50.yml -p s50 up -d >>"$out/docker-s50.log" 2>&1 || echo "docker: up -d of s50 failed" >&2
  record
  hf docker-ps50 "$RUNS" "$C -f $f/s50.yml -p s50 ps"
  $C -f $f/s50.yml -p s50 down -v >>"$out/docker-s50.log" 2>&1 || echo "docker: down -v of s50 failed" >&2
  RECORD=record NOWARM=1 PAIRS=$FIFTY_RUNS pairs docker-s50 "$C -f $f/s50.yml -p s50 up -d" "$C -f $f/s50.yml -p s50 down -v"
  /usr/bin/docker rmi bench:busybox >/dev/null 2>&1 || true
  exit 0
fi

# ------------------------------------------------------------------------ main
[ "$(id -u)" = 0 ] || { echo "bench/compose.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release -q
tmp=$(mktemp -d /var/tmp/berth-compose-bench.XXXXXX)
out=$tmp/out; f=$tmp/files
mkdir -p "$out" "$f" "$tmp/config" "$tmp/docker"
printf '[network]\nip_forward = false\n' > "$tmp/config/berth.toml"
# A copy of the binary: the target dir may be rebuilt while this runs.
cp target/release/berth "$tmp/berth"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || rev="$rev + uncommitted changes"

host_state() { # what berth or docker could leave on the host
  ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "mounts $(mount | wc -l)"
  ls -d /sys/fs/cgroup/*/docker 2>/dev/null || true
}
host_state > "$tmp/host.before"
cleanup() {
  BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config "$tmp/berth" system reset -f >/dev/null 2>&1 || true
  if [ -s "$tmp/docker/docker.pid" ]; then kill "$(cat "$tmp/docker/docker.pid")" 2>/dev/null || true; sleep 3; fi
  umount -R "$tmp/docker/data" 2>/dev/null || true
  umount -R "$tmp/docker/exec" 2>/dev/null || true
  for c in /sys/fs/cgroup/*/docker; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

scripts/busybox-rootfs > "$tmp/rootfs.tar"

# The stack, three ways (see the header).
stack() { # HEALTHCHECK-EXTRA CONDITION
  local hc="healthcheck: {test: [\"CMD\", \"true\"], $1}"
  local dep_web dep_proxy
  if [ "$2" = started ]; then dep_web="[db, cache]"; dep_proxy="[web]"
  else dep_web="{db: {condition: service_healthy}, cache: {condition: service_healthy}}"
       dep_proxy="{web: {condition: service_healthy}}"; fi
  cat <<EOF
services:
  db:
    image: bench:busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    volumes: ["dbdata:/data"]
    $hc
  cache:
    image: bench:busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    $hc
  web:
    image: bench:busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /tmp & wait"]
    depends_on: $dep_web
    $hc
  proxy:
    image: bench:busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /tmp & wait"]
    depends_on: $dep_proxy
    $hc
volumes:
  dbdata: {}
EOF
}
stack "interval: 30s" started > "$f/plain.yml"
stack "interval: 100ms" healthy > "$f/healthy.yml"
stack "interval: 30s, start_period: 10s, start_interval: 100ms" healthy > "$f/issue.yml"
{
  echo "services:"
  for i in $(seq -w 1 50); do
    cat <<EOF
  s$i:
    image: bench:busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    environment:
      SERVICE: s$i
      LEVEL: \${LEVEL:-info}
      PEERS: "s01,s02,s03"
    labels:
      bench.tier: "t$((10#$i % 5))"
      bench.index: "$i"
    healthcheck: {test: ["CMD", "true"], interval: 30s, timeout: 5s, retries: 3}
    restart: unless-stopped
EOF
    [ "$i" != 01 ] && printf '    depends_on: [s%02d]\n' $((10#$i - 1))
    [ $((10#$i % 5)) = 0 ] && printf '    volumes: ["v%s:/data"]\n' "$i"
  done
  echo "volumes:"
  for i in $(seq -w 5 5 50); do echo "  v$i: {}"; done
} > "$f/s50.yml"

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "compose bench: berth $rev, RUNS=$RUNS, load $load" >&2
unshare -n bash "$SELF" _berth "$tmp" || echo "berth phase failed" >&2
docker_note="not measured (DOCKER=0)"
if [ "$DOCKER" = 1 ]; then
  if [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] && command -v docker-compose >/dev/null; then
    unshare -n bash "$SELF" _docker "$tmp" || echo "docker phase failed" >&2
    docker_note="docker-compose $(docker-compose version --short 2>/dev/null), dockerd $(/usr/sbin/dockerd --version | awk '{print $3}' | tr -d ,)"
    umount -R "$tmp/docker/data" 2>/dev/null || true
    rm -rf "$tmp/docker/data" "$tmp/docker/exec"
    for c in /sys/fs/cgroup/*/docker; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null; done
  else docker_note="not installed"; fi
fi

v() { if [ -s "$out/$1" ]; then cat "$out/$1"; else echo "—"; fi; }
ratio() { # berth-file docker-file (medians)
  python3 - "$out/$1" "$out/$2" <<'PY' 2>/dev/null || echo "—"
import statistics, sys
m = [statistics.median([float(l) for l in open(p) if l.strip()]) for p in sys.argv[1:]]
print('%.2f×' % (m[0] / m[1]))
PY
}
cat <<MD
Produced by \`bench/compose.sh\` (RUNS=$RUNS up/down pairs, medians with min–max;
config/ps: hyperfine medians) on $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r),
load average $load at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; berth $rev (release);
Docker: $docker_note. Each engine in a network namespace of its own.

| 4-service stack | berth | docker-compose | berth / docker |
|---|---|---|---|
| plain: \`up -d\` | $(stats "$out/berth-plain.up") | $(stats "$out/docker-plain.up") | $(ratio berth-plain.up docker-plain.up) |
| plain: \`down -v\` | $(stats "$out/berth-plain.down") | $(stats "$out/docker-plain.down") | $(ratio berth-plain.down docker-plain.down) |
| healthy (interval 100ms): berth \`up -d --wait\`, docker \`up -d\` + poll | $(stats "$out/berth-healthy.up") | $(stats "$out/docker-healthy.up") | $(ratio berth-healthy.up docker-healthy.up) |
| healthy: \`down -v\` | $(stats "$out/berth-healthy.down") | $(stats "$out/docker-healthy.down") | $(ratio berth-healthy.down docker-healthy.down) |
| issue (start_interval 100ms): \`up -d --wait\` | $(stats "$out/berth-issue.up") | — | |
| issue: \`down -v\` | $(stats "$out/berth-issue.down") | — | |

| 50-service file | berth | docker-compose |
|---|---|---|
| \`compose config\` | $(v berth-config50.hf) ms | $(v docker-config50.hf) ms |
| \`compose ps\` (50 running) | $(v berth-ps50.hf) ms | $(v docker-ps50.hf) ms |
| \`up -d\` (median of $FIFTY_RUNS) | $(stats "$out/berth-s50.up") | $(stats "$out/docker-s50.up") |
| \`down -v\` (median of $FIFTY_RUNS) | $(stats "$out/berth-s50.down") | $(stats "$out/docker-s50.down") |

Targets: berth ≤ 0.2× docker compose for up and down; config and ps of 50 services ≤ 50 ms.
MD

# Nothing of this run may be left on the host: no link it made (its bridges
# and veths lived in its own network namespaces), no cgroup of its containers,
# no mount under its temp dir, no process naming it, no docker cgroup tree.
sleep 1
host_state > "$tmp/host.after"
left=0
if [ -s "$out/links" ]; then
  for l in $(sort -u "$out/links" | grep -vx lo); do
    ip link show "$l" >/dev/null 2>&1 && { echo "left on the host: link $l" >&2; left=1; }
  done
fi
if [ -s "$out/ids" ]; then
  for id in $(sort -u "$out/ids"); do
    ls -d /sys/fs/cgroup/*/berth/"$id"* /sys/fs/cgroup/*/docker/"$id"* 2>/dev/null >&2 && left=1
  done
fi
grep -x '/sys/fs/cgroup/.*/docker' "$tmp/host.before" >/dev/null || ! ls -d /sys/fs/cgroup/*/docker >&2 2>/dev/null || left=1
mount | grep -F "$tmp" >&2 && left=1
pgrep -af -- "$tmp" >&2 && left=1
if [ "$left" = 0 ]; then
  echo "host check: nothing of this run left (links, mounts, cgroups, processes)" >&2
else
  echo "host check: FAILED, see above" >&2
fi
if ! diff -q "$tmp/host.before" "$tmp/host.after" >/dev/null; then
  echo "note: the host's links or mount count changed during the run (other users of this machine):" >&2
  diff "$tmp/host.before" "$tmp/host.after" >&2 || true
fi
exit 0
