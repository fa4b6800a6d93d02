#!/usr/bin/env bash
# berth start-path benchmark (issue 3), release build, as root.
#
#   bench/run.sh            writes bench/RESULTS.md (and prints it)
#
# Measures, in one sitting so the figures compare:
#   floor   unshare -fmpiun --mount-proc chroot ROOTFS /bin/true
#   berth   berth run --rm --network none IMAGE true
#   bridge  berth run --rm IMAGE true (the default bridge network) and on a
#           user-defined network (berth.toml keeps the host's ip_forward as is)
#   volume  berth run --rm --network none -v benchvol:/data IMAGE true
#   runc    runc run of an OCI bundle of the same rootfs (when installed)
#   docker / podman  run --rm of the same image (when installed and working)
# plus 20 detached containers started one after another (`run -d … sleep 300`),
# removed with `rm -f`, and the PSS berth keeps resident per running container
# (the monitor, from /proc/PID/smaps_rollup).
# Environment: RUNS (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release -q
BERTH=$PWD/target/release/berth
tmp=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
mkdir -p "$tmp/config" && printf '[network]\nip_forward = false\n' > "$tmp/config/berth.toml"
cleanup() {
  "$BERTH" system reset -f >/dev/null 2>&1 || true
  [ -d "$tmp/podman" ] && podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver overlay rm -af >/dev/null 2>&1
  umount -R "$tmp/podman" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

scripts/busybox-rootfs > "$tmp/rootfs.tar"
"$BERTH" import "$tmp/rootfs.tar" bench:busybox >/dev/null
mkdir -p "$tmp/rootfs" && tar -C "$tmp/rootfs" -xf "$tmp/rootfs.tar"

median() { # hyperfine JSON -> median in ms
  python3 -c "import json,sys; print('%.2f' % (json.load(open(sys.argv[1]))['results'][0]['median']*1000))" "$1"
}
hf() { # name, command...
  local name=$1; shift
  hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$tmp/$name.json" "$*" >/dev/null 2>&1 && median "$tmp/$name.json" || echo "FAILED"
}

floor=$(hf floor "unshare -fmpiun --mount-proc chroot $tmp/rootfs /bin/true")
berth=$(hf berth "$BERTH run --rm --network none bench:busybox true")
bridge=$(hf bridge "$BERTH run --rm bench:busybox true")
"$BERTH" network create benchnet >/dev/null
usernet=$(hf usernet "$BERTH run --rm --network benchnet bench:busybox true")
"$BERTH" volume create benchvol >/dev/null
volume=$(hf volume "$BERTH run --rm --network none -v benchvol:/data bench:busybox true")
runc_ms="not installed"
if command -v runc >/dev/null; then
  mkdir -p "$tmp/bundle" && (cd "$tmp/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/; s|"path": "rootfs"|"path": "'"$tmp/rootfs"'"|' config.json)
  runc_ms=$(hf runc "runc --root $tmp/runc run --bundle $tmp/bundle bench-runc")
fi
# 20 detached starts, PSS per running container, 20 removals.
t0=$(date +%s%N)
for i in $(seq 1 20); do "$BERTH" run -d --name "bench-d-$i" bench:busybox sleep 300 >/dev/null; done
t1=$(date +%s%N)
pss_total=0
for i in $(seq 1 20); do
  pid=$("$BERTH" inspect -f '{{.State.Pid}}' "bench-d-$i")
  mon=$(awk '{print $4}' "/proc/$pid/stat")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$mon/smaps_rollup")
  pss_total=$((pss_total + pss))
done
t2=$(date +%s%N)
"$BERTH" rm -f $(seq -f "bench-d-%g" 1 20) >/dev/null
t3=$(date +%s%N)
start20=$(( (t1 - t0) / 1000000 ))
rm20=$(( (t3 - t2) / 1000000 ))
pss_kib=$((pss_total / 20))

docker_ms="not installed"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker import "$tmp/rootfs.tar" bench:busybox >/dev/null
  docker_ms="$(hf docker "docker run --rm --network none bench:busybox true") ms"
fi
podman_ms="not installed"
if command -v podman >/dev/null; then
  # A throwaway podman store under $tmp: nothing of podman's own is touched.
  P="podman --root $tmp/podman --runroot $tmp/podman-run --storage-driver overlay"
  $P import "$tmp/rootfs.tar" bench:busybox >/dev/null 2>&1 && \
  podman_ms="$(hf podman "$P run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 bench:busybox true") ms" || podman_ms=FAILED
fi

section=$(cat <<MD
Produced by \`bench/run.sh\` (RUNS=$RUNS, hyperfine medians, release build) on $(date -u +%Y-%m-%d),
$(nproc) cores, kernel $(uname -r). Same sitting for every row.

| workload | median |
|---|---|
| floor: \`unshare -fmpiun --mount-proc chroot ROOTFS /bin/true\` | $floor ms |
| **berth run --rm --network none IMAGE true** | **$berth ms** |
| **berth run --rm IMAGE true** (default bridge: veth, address, route, NAT) | **$bridge ms** |
| berth run --rm --network benchnet IMAGE true (user network, DNS) | $usernet ms |
| berth run --rm --network none -v benchvol:/data IMAGE true (a named volume) | $volume ms |
| runc run (bundle of the same rootfs) | $runc_ms ms |
| docker run --rm --network none | $docker_ms |
| podman run --rm --network none | $podman_ms |
| 20 × \`berth run -d … sleep 300\`, one after another | $start20 ms total, $((start20 / 20)) ms each |
| \`berth rm -f\` of those 20 (one command) | $rm20 ms total, $((rm20 / 20)) ms each |
| PSS per running container (its monitor) | $pss_kib KiB |

Targets (issue 3): ≤ 15 ms per \`run --rm\`, ≤ 20 ms per detached start, ≤ 10 ms per removal,
≤ 1.5 MiB PSS per running container, no daemon. Issue 5: ≤ 25 ms on the default bridge, within 10× the floor.
MD
)
# Replace this script's section of RESULTS.md (between its markers), keep the rest.
python3 - "$section" <<'PY'
import sys
p = "bench/RESULTS.md"
text = open(p).read()
begin, end = "<!-- bench/run.sh -->\n", "<!-- /bench/run.sh -->\n"
new = begin + sys.argv[1].rstrip("\n") + "\n" + end
if begin in text and end in text:
    a, b = text.index(begin), text.index(end) + len(end)
    text = text[:a] + new + text[b:]
else:
    text = "# berth benchmark results\n\n" + new + text.split("\n", 2)[2] if text.startswith("# berth") else new + text
open(p, "w").write(text)
PY
cat bench/RESULTS.md
