#!/usr/bin/env bash
# berth serve benchmark (issue 19), release build, as root: the docker CLI
# driving `berth serve` beside the same CLI driving dockerd, and berth's own
# CLI, in one sitting.
#
#   bench/api.sh      prints a markdown table (append it to bench/RESULTS.md by hand)
#
# Each engine works in a network namespace of its own (`unshare -n`), as
# bench/compose.sh: berth with a throwaway state root and `berth serve` on a
# socket in it; Docker as a throwaway dockerd (Debian's docker.io, own data
# root, exec root, pidfile and socket; no iptables, ip_forward or masquerade).
# The docker CLI is the machine's /usr/bin/docker for both. The image is the
# host's static busybox (scripts/busybox-rootfs) imported as bench:busybox.
# Measured:
#   run -d     `docker run -d --name x bench:busybox sleep 1000` (create + start
#              through the API), then `docker rm -f x` (timed apart); berth's
#              own `berth run -d` / `berth rm -f` for the baseline
#   run --rm   `docker run --rm bench:busybox true` in the foreground (create,
#              attach, wait, start through the API), `berth run --rm` and
#              `docker version` (the CLI's own start), run in turns (medians;
#              hyperfine for dockerd's)
#   ps 200     `docker ps` with 200 running containers (hyperfine median);
#              `berth ps`; a bare `GET /containers/json` with curl
#   50 clients 50 concurrent clients listing containers 20 times each over
#              the socket: p50 and p99 latency
#   listing    GET /containers/json on one kept-alive connection: when
#              nothing changed, and right after a change (a rename)
#   rss        the server's resident (and proportional) memory 1 s after
#              all that and after 15 s more without requests (berth serve
#              vs dockerd), and berth's fork server and spare process
# Environment: RUNS (default 20) run/rm pairs, QUICK_RUNS (default 30)
# hyperfine runs; DOCKER=0 skips Docker; KEEP=1 keeps the temp dir;
# BERTH=path measures that berth binary (an earlier build) instead of
# building this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
SELF=$PWD/bench/api.sh
RUNS=${RUNS:-20}
QUICK_RUNS=${QUICK_RUNS:-30}
DOCKER=${DOCKER:-1}

ms() { python3 -c "import sys; print('%.1f' % ((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$2"; }
stats() {
  [ -e "$1" ] || { echo "—"; return; }
  [ -s "$1" ] || { echo "FAILED"; return; }
  python3 -c "
import statistics, sys
v = [float(l) for l in open(sys.argv[1]) if l.strip()]
print('%.1f ms (%.1f–%.1f)' % (statistics.median(v), min(v), max(v)))" "$1"
}
hf_median() { python3 -c "import json,sys; print('%.1f ms' % (json.load(open(sys.argv[1]))['results'][0]['median']*1000))" "$1"; }
# pairs NAME UP DOWN: one warm-up pair, then RUNS timed pairs.
pairs() {
  local name=$1 up=$2 down=$3 t0 t1 t2 t3 i
  : > "$out/$name.up"; : > "$out/$name.down"
  { eval "$up" && eval "$down"; } >>"$out/$name.log" 2>&1 || { echo "$name: warm-up failed" >&2; tail -n 5 "$out/$name.log" >&2; return 0; }
  for i in $(seq 1 "$RUNS"); do
    t0=$EPOCHREALTIME; eval "$up" >>"$out/$name.log" 2>&1 || { echo "$name: up failed" >&2; tail -n 5 "$out/$name.log" >&2; return 0; }
    t1=$EPOCHREALTIME; t2=$EPOCHREALTIME
    eval "$down" >>"$out/$name.log" 2>&1 || { echo "$name: down failed" >&2; return 0; }
    t3=$EPOCHREALTIME
    ms "$t0" "$t1" >> "$out/$name.up"; ms "$t2" "$t3" >> "$out/$name.down"
  done
}
hf() {
  local name=$1; shift
  if hyperfine -N --warmup 3 --runs "$QUICK_RUNS" --export-json "$out/$name.json" "$*" >>"$out/$name.log" 2>&1; then
    hf_median "$out/$name.json" > "$out/$name.hf"
  else echo FAILED > "$out/$name.hf"; tail -n 5 "$out/$name.log" >&2; fi
}
# together NAME=CMD...: the commands in turns (a change of the machine's
# load hits them alike: their ratio is what matters), QUICK_RUNS rounds
# after 3 warm-up rounds; each one's median goes to $out/NAME.hf.
together() {
  python3 - "$QUICK_RUNS" "$out" "$@" >>"$out/together.log" 2>&1 <<'PY' || echo "together: $* failed" >&2
import shlex, statistics, subprocess, sys, time
n, out = int(sys.argv[1]), sys.argv[2]
cmds = [a.split("=", 1) for a in sys.argv[3:]]
times = {k: [] for k, _ in cmds}
for i in range(n + 3):
    for k, c in cmds:
        t = time.perf_counter()
        subprocess.run(shlex.split(c), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i >= 3:
            times[k].append((time.perf_counter() - t) * 1000)
for k, v in times.items():
    open("%s/%s.hf" % (out, k), "w").write("%.1f ms\n" % statistics.median(v))
PY
}
many() { # start 200 sleepers with CMD (docker or berth)
  local i; for i in $(seq 1 200); do $1 run -d --name "f$i" bench:busybox sleep 3600 >/dev/null; done
}
# clients SOCKET NAME: 50 threads, 20 GET /containers/json each; p50 and p99.
clients() {
  python3 - "$1" > "$out/$2.clients" <<'PY'
import http.client, socket, statistics, sys, threading, time
path = sys.argv[1]
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
times, lock = [], threading.Lock()
def worker():
    c = Conn("d")
    for _ in range(20):
        t = time.perf_counter()
        c.request("GET", "/v1.41/containers/json")
        r = c.getresponse(); r.read()
        with lock:
            times.append((time.perf_counter() - t) * 1000)
ts = [threading.Thread(target=worker) for _ in range(50)]
for t in ts: t.start()
for t in ts: t.join()
times.sort()
print("p50 %.1f ms, p99 %.1f ms" % (statistics.median(times), times[int(len(times) * 0.99) - 1]))
PY
}
# listing SOCKET NAME: GET /containers/json on one kept-alive connection,
# the client's own work included (median of 200), and the same right
# after a change (a rename of f1, 30 times): the time a server takes to
# answer when nothing changed and when something did.
listing() {
  python3 - "$1" > "$out/$2.listing" <<'PY'
import http.client, socket, statistics, sys, time
path = sys.argv[1]
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
c = Conn("d")
def get():
    t = time.perf_counter()
    c.request("GET", "/v1.41/containers/json")
    r = c.getresponse(); r.read()
    return (time.perf_counter() - t) * 1000
for _ in range(10): get()
hot = [get() for _ in range(200)]
changed = []
for i in range(30):
    c.request("POST", "/v1.41/containers/f1%s/rename?name=f1%s" % ("" if i % 2 == 0 else "x", "x" if i % 2 == 0 else ""))
    r = c.getresponse(); r.read()
    changed.append(get())
print("%.2f ms|%.2f ms" % (statistics.median(hot), statistics.median(changed)))
PY
}
# rss PID: resident and proportional set of a process, in MiB.
rss() {
  awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {printf "%.1f MiB (PSS %.1f)", r/1024, p/1024}' "/proc/$1/smaps_rollup"
}

if [ "${1:-}" = _berth ]; then
  tmp=$2; out=$tmp/out
  export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
  B=$tmp/berth
  ip link set lo up
  "$B" import "$tmp/rootfs.tar" bench:busybox >/dev/null
  "$B" serve -H "unix://$tmp/b.sock" 2>"$out/serve.log" &
  srv=$!
  trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null; "$B" system reset -f >/dev/null 2>&1 || true' EXIT
  for _ in $(seq 1 100); do [ -S "$tmp/b.sock" ] && break; sleep 0.05; done
  D="docker -H unix://$tmp/b.sock"
  pairs serve-run "$D run -d --name xx bench:busybox sleep 1000" "$D rm -f xx"
  pairs berth-run "$B run -d --name xx bench:busybox sleep 1000" "$B rm -f xx"
  together "serve-runrm=$D run --rm bench:busybox true" "berth-runrm=$B run --rm bench:busybox true" \
    "cli-version=$D version"
  many "$B"
  hf serve-ps "$D ps"
  hf berth-ps "$B ps"
  hf serve-curl "curl -s --unix-socket $tmp/b.sock http://d/v1.41/containers/json"
  listing "$tmp/b.sock" serve
  clients "$tmp/b.sock" serve
  sleep 1
  rss "$srv" > "$out/serve.rss"
  sleep 15
  rss "$srv" > "$out/serve.idle"
  # The fork server and its spare (children of the server).
  for p in $(ps -o pid= --ppid "$srv") $(ps -o pid= --ppid "$(ps -o pid= --ppid "$srv" | head -n 1)"); do
    rss "$p"; echo
  done | paste -sd ';' | sed 's/;/, /g' > "$out/serve.helpers"
  exit 0
fi

if [ "${1:-}" = _docker ]; then
  tmp=$2; out=$tmp/out; d=$tmp/docker
  ip link set lo up
  /usr/sbin/dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
    -H "unix://$d/docker.sock" --iptables=false --ip6tables=false --ip-forward=false \
    --ip-masq=false --userland-proxy=false >"$d/dockerd.log" 2>&1 &
  stop_dockerd() {
    [ -s "$d/docker.pid" ] || return 0
    docker -H "unix://$d/docker.sock" rm -f $(docker -H "unix://$d/docker.sock" ps -aq) >/dev/null 2>&1 || true
    kill "$(cat "$d/docker.pid")" 2>/dev/null || true
    for _ in $(seq 1 300); do [ -e "$d/docker.pid" ] || break; sleep 0.1; done
  }
  trap stop_dockerd EXIT
  for _ in $(seq 1 100); do curl -fs --unix-socket "$d/docker.sock" http://d/_ping >/dev/null 2>&1 && break; sleep 0.1; done
  D="docker -H unix://$d/docker.sock"
  $D import -c 'CMD ["sh"]' "$tmp/rootfs.tar" bench:busybox >/dev/null
  pairs docker-run "$D run -d --name xx bench:busybox sleep 1000" "$D rm -f xx"
  hf docker-runrm "$D run --rm bench:busybox true"
  many "$D"
  hf docker-ps "$D ps"
  hf docker-curl "curl -s --unix-socket $d/docker.sock http://d/v1.41/containers/json"
  listing "$d/docker.sock" docker
  clients "$d/docker.sock" docker
  sleep 1
  rss "$(cat "$d/docker.pid")" > "$out/dockerd.rss"
  sleep 15
  rss "$(cat "$d/docker.pid")" > "$out/dockerd.idle"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "bench/api.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
[ -n "${BERTH:-}" ] || cargo build --release -q
tmp=$(mktemp -d /var/tmp/berth-api-bench.XXXXXX)
out=$tmp/out
mkdir -p "$out" "$tmp/config" "$tmp/docker"
printf '[network]\nip_forward = false\n' > "$tmp/config/berth.toml"
cp "${BERTH:-${CARGO_TARGET_DIR:-target}/release/berth}" "$tmp/berth"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- crates 2>/dev/null || rev="$rev + uncommitted changes"
[ -z "${BERTH:-}" ] || rev="$BERTH"
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
load=$(cut -d' ' -f1-3 /proc/loadavg)
unshare -n bash "$SELF" _berth "$tmp" || echo "berth phase failed" >&2
if [ "$DOCKER" = 1 ]; then unshare -n bash "$SELF" _docker "$tmp" || echo "docker phase failed" >&2; fi
v() { cat "$out/$1" 2>/dev/null || echo "—"; }
cat <<EOF

### berth serve beside dockerd (bench/api.sh, berth $rev, $(date -u +%Y-%m-%d), RUNS=$RUNS, load $load)

Client: $(docker --version | sed 's/,.*//') for both engines; medians (min–max).

| | docker CLI → berth serve | docker CLI → dockerd | berth CLI |
|---|---|---|---|
| \`run -d\` (create + start) | $(stats "$out/serve-run.up") | $(stats "$out/docker-run.up") | $(stats "$out/berth-run.up") |
| \`rm -f\` of it | $(stats "$out/serve-run.down") | $(stats "$out/docker-run.down") | $(stats "$out/berth-run.down") |
| \`run --rm … true\` in the foreground | $(v serve-runrm.hf) | $(v docker-runrm.hf) | $(v berth-runrm.hf) |
| \`docker version\` (the CLI's own start) | $(v cli-version.hf) | | |
| \`ps\` with 200 running | $(v serve-ps.hf) | $(v docker-ps.hf) | $(v berth-ps.hf) |
| \`GET /containers/json\` (curl), 200 running | $(v serve-curl.hf) | $(v docker-curl.hf) | |
| the same on a kept-alive connection (Python client), nothing changed | $(cut -d'|' -f1 "$out/serve.listing" 2>/dev/null || echo —) | $(cut -d'|' -f1 "$out/docker.listing" 2>/dev/null || echo —) | |
| the same right after a change (a rename) | $(cut -d'|' -f2 "$out/serve.listing" 2>/dev/null || echo —) | $(cut -d'|' -f2 "$out/docker.listing" 2>/dev/null || echo —) | |
| 50 clients × 20 \`GET /containers/json\`, 200 running | $(v serve.clients) | $(v docker.clients) | |
| server RSS 1 s after those clients | $(v serve.rss) | $(v dockerd.rss) | |
| server RSS after 15 s more without requests | $(v serve.idle) | $(v dockerd.idle) | |
| berth's fork server and its spare, then | $(v serve.helpers) | | |
EOF
