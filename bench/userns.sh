#!/usr/bin/env bash
# `run --rm` with and without a user namespace (issue 23), as root.
#
#   BERTH=target/release/berth RUNS=50 bash bench/userns.sh
#
# Both rows in one sitting, interleaved by hyperfine: the same busybox image,
# `--network none` (the start path alone), then `--userns=auto` (subordinate
# ids from a file of the bench's own, never the host's /etc/subuid).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
BERTH=${BERTH:-$PWD/target/release/berth}
[ "$(id -u)" = 0 ] || { echo "bench/userns.sh: run as root" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/berth-bench-userns.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
mkdir -p "$tmp/config"
echo "containers:1000000:1000000" > "$tmp/subuid"
echo "containers:1000000:1000000" > "$tmp/subgid"
printf '[network]\nip_forward = false\n[userns]\nsubuid_file = "%s"\nsubgid_file = "%s"\n' \
  "$tmp/subuid" "$tmp/subgid" > "$tmp/config/berth.toml"
trap '"$BERTH" system reset -f >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
scripts/busybox-rootfs | "$BERTH" import - bench:busybox >/dev/null
hyperfine -N -w 5 -r "$RUNS" \
  "$BERTH run --rm --network none bench:busybox true" \
  "$BERTH run --rm --network none --userns=auto bench:busybox true" \
  "$BERTH run --rm --network none --uidmap 0:100000:65536 bench:busybox true"
