#!/usr/bin/env bash
# berth sbom benchmark (issue 22): the SBOM of a Debian-based Python image
# (debootstrap --variant=minbase bookworm from the machine's mirror, then
# python3 with requests, yaml, numpy and pip from Debian), cold (no layer
# scan cached: the cache dir removed before each run; the page cache is
# warm) and warm (every layer's scan cached), as a table and as SPDX and
# CycloneDX JSON; release build, as root.
#
#   bench/sbom.sh            prints the image, then one line per figure
#   RUNS=30 bench/sbom.sh    hyperfine runs per figure (default 20)
#
# A throwaway state root; the image's apt-get RUN uses --network=host
# (the host's ip_forward is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/sbom.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
RUNS=${RUNS:-20}
cargo build --release -q -p cli --bin berth
BERTH=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
tmp=$(mktemp -d /var/tmp/berth-sbom-bench.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
mkdir -p "$BERTH_CONFIG" && printf '[network]\nip_forward = false\n' > "$BERTH_CONFIG/berth.toml"
cleanup() { "$BERTH" system reset -f >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
debootstrap --variant=minbase bookworm "$tmp/debian" "${mirror:-http://deb.debian.org/debian}" >/dev/null
tar -C "$tmp/debian" -c . | "$BERTH" import - debian:bookworm >/dev/null
rm -rf "$tmp/debian"
mkdir -p "$tmp/ctx"
cat > "$tmp/ctx/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN --network=host apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-requests python3-yaml python3-numpy python3-pip >/dev/null && rm -rf /var/lib/apt/lists/*
EOF
"$BERTH" build -q --allow network.host -t pyapp "$tmp/ctx" >/dev/null
size=$("$BERTH" images --format '{{.Size}}' pyapp)
n=$("$BERTH" sbom pyapp | tail -n +2 | wc -l)
types=$("$BERTH" sbom pyapp | tail -n +2 | awk '{print $3}' | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
echo "image: pyapp, $size, 2 layers, $n packages ($types)"
median() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('%.1f ms (min %.1f, max %.1f)' % (r['median']*1e3, r['min']*1e3, r['max']*1e3))" "$1"; }
cache=$BERTH_ROOT/cache/sbom
hyperfine -N -w 2 -r "$RUNS" --prepare "rm -rf $cache" --export-json "$tmp/cold.json" "$BERTH sbom pyapp" >/dev/null
echo "berth sbom pyapp, cold (no layer scan cached): $(median "$tmp/cold.json")"
"$BERTH" sbom pyapp >/dev/null
hyperfine -N -w 3 -r "$RUNS" --export-json "$tmp/warm.json" "$BERTH sbom pyapp" >/dev/null
echo "berth sbom pyapp, warm (both layers' scans cached): $(median "$tmp/warm.json")"
hyperfine -N -w 3 -r "$RUNS" --export-json "$tmp/spdx.json" "$BERTH sbom --format spdx-json pyapp" >/dev/null
echo "berth sbom --format spdx-json pyapp, warm: $(median "$tmp/spdx.json")"
hyperfine -N -w 3 -r "$RUNS" --export-json "$tmp/cdx.json" "$BERTH sbom --format cyclonedx-json pyapp" >/dev/null
echo "berth sbom --format cyclonedx-json pyapp, warm: $(median "$tmp/cdx.json")"
hyperfine -N -w 3 -r "$RUNS" --export-json "$tmp/floor.json" "$BERTH images -q pyapp" >/dev/null
echo "floor: berth images -q pyapp (the CLI and the store opened): $(median "$tmp/floor.json")"
