#!/usr/bin/env bash
# berth build benchmark (issue 8): the peers workload (../shared/bench/peers.sh
# build: a 3-stage Dockerfile, 100 MB context) for berth and, when installed,
# podman, in one sitting; release build, as root.
#
#   bench/build.sh            prints one line per figure (median of 3 runs)
#
# berth uses a throwaway state root; podman its own store, in its own
# network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/build.sh: run as root" >&2; exit 1; }
PEERS=${PEERS:-$(cd .. && pwd)/shared/bench/peers.sh}
[ -f "$PEERS" ] || { echo "bench/build.sh: $PEERS not found (set PEERS=)" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release -q
tmp=$(mktemp -d /var/tmp/berth-build-bench.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
mkdir -p "$BERTH_CONFIG" && printf '[network]\nip_forward = false\n' > "$BERTH_CONFIG/berth.toml"
cleanup() { "$PWD/target/release/berth" system reset -f >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
BERTH=$PWD/target/release/berth bash "$PEERS" berth build 2>/dev/null
# podman's RUN steps set up its CNI bridge, nftables chains and turn on the
# host's ip_forward: in a network namespace of its own it leaves the host as
# it was (the build needs no network: the base image is local).
if command -v podman >/dev/null; then
  unshare -n sh -c "ip link set lo up; bash '$PEERS' podman build 2>/dev/null"
fi
# Docker (Debian's docker.io: dockerd 20.10 with BuildKit, driven by its own
# 20.10 CLI) when installed: a throwaway dockerd in a network namespace of its
# own (its bridge, iptables rules and ip_forward stay in there) with its own
# data root; its cgroups are removed afterwards.
if [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ]; then
  dtmp=$(mktemp -d /var/tmp/berth-build-bench-docker.XXXXXX)
  unshare -n sh -c "
    ip link set lo up
    /usr/sbin/dockerd --data-root '$dtmp/data' --exec-root '$dtmp/exec' --pidfile '$dtmp/docker.pid' \
      -H 'unix://$dtmp/docker.sock' --iptables=false --ip6tables=false --ip-forward=false \
      --ip-masq=false --userland-proxy=false >'$dtmp/dockerd.log' 2>&1 &
    for i in \$(seq 1 100); do [ -S '$dtmp/docker.sock' ] && break; sleep 0.1; done
    export DOCKER_HOST='unix://$dtmp/docker.sock' PATH=/usr/bin:\$PATH DOCKER_BK_CLI=/usr/bin/docker
    bash '$PEERS' docker build 2>/dev/null
    kill \$(cat '$dtmp/docker.pid'); while [ -e '$dtmp/docker.pid' ]; do sleep 0.1; done
  " || true
  umount -R "$dtmp/data" 2>/dev/null || true
  rm -rf "$dtmp"
  for d in /sys/fs/cgroup/*/docker; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
fi
