#!/usr/bin/env bash
# Signing benchmark (issue 22): `berth sign` and `berth verify` of a small
# image (the host's static busybox) in a `berth registry serve` on
# 127.0.0.1, release build, as root. Also the floor: the same registry
# requests verify makes (image manifest, .sig manifest, referrers, the
# referrer's manifest, the payload blob) sent by curl, one process each.
#
#   bench/sign.sh        prints hyperfine medians (RUNS=20 by default;
#                        BERTH=path/to/berth to use a given binary)
#
# Target: ≤ 50 ms plus the registry round trips. `sign` first decrypts
# the key: scrypt with N = 2^16, r = 8 (cosign's key format, 64 MiB of
# memory-hard work by design); "key decrypt only" times that alone (a
# wrong BERTH_PASSWORD: berth derives the key, the MAC fails, it exits).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/sign.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
[ -n "${BERTH:-}" ] || { cargo build --release -q -p cli --bin berth; BERTH=${CARGO_TARGET_DIR:-$PWD/target}/release/berth; }
RUNS=${RUNS:-20}
tmp=$(mktemp -d /var/tmp/berth-sign-bench.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config BERTH_PASSWORD=bench
mkdir -p "$BERTH_CONFIG" && printf '[network]\nip_forward = false\n' > "$BERTH_CONFIG/berth.toml"
"$BERTH" registry serve --addr 127.0.0.1:0 --root "$tmp/registry" 2> "$tmp/registry.log" &
reg=$!
cleanup() { kill "$reg" 2>/dev/null || true; wait "$reg" 2>/dev/null || true; "$BERTH" system reset -f >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 50); do [ -s "$tmp/registry.log" ] && break; sleep 0.1; done
addr=$(head -1 "$tmp/registry.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["addr"])')
img=$addr/bench/bb:1
scripts/busybox-rootfs | "$BERTH" import - "$img" >/dev/null
"$BERTH" push "$img" >/dev/null
"$BERTH" key generate --output-key-prefix "$tmp/k" 2>/dev/null
"$BERTH" sign --key "$tmp/k.key" "$img" 2>/dev/null
digest=$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
  "http://$addr/v2/bench/bb/manifests/1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
sig=$(curl -s "http://$addr/v2/bench/bb/manifests/sha256-${digest#sha256:}.sig" -H 'Accept: application/vnd.oci.image.manifest.v1+json')
layer=$(printf '%s' "$sig" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
ref=$(curl -s "http://$addr/v2/bench/bb/referrers/$digest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
A='Accept: application/vnd.oci.image.manifest.v1+json'
floor="curl -s -o /dev/null -H '$A' http://$addr/v2/bench/bb/manifests/1; curl -s -o /dev/null -H '$A' http://$addr/v2/bench/bb/manifests/sha256-${digest#sha256:}.sig; curl -s -o /dev/null http://$addr/v2/bench/bb/referrers/$digest; curl -s -o /dev/null -H '$A' http://$addr/v2/bench/bb/manifests/$ref; curl -s -o /dev/null http://$addr/v2/bench/bb/blobs/$layer"
echo "berth $("$BERTH" version --format '{{.Client.Version}}' 2>/dev/null || echo '?'), $(nproc) cores, $(uname -r), $(date -u +%F)"
hyperfine -N --warmup 3 --runs "$RUNS" -i --export-json "$tmp/out.json" \
  -n "berth verify --key k.pub IMAGE" "$BERTH verify --key $tmp/k.pub $img" \
  -n "berth sign --key k.key IMAGE" "$BERTH sign --key $tmp/k.key $img" \
  -n "key decrypt only (wrong password)" "env BERTH_PASSWORD=wrong $BERTH sign --key $tmp/k.key $img" \
  -n "floor: verify's 5 registry requests by curl" "bash -c \"$floor\"" \
  -n "floor: berth version (process start)" "$BERTH version" >/dev/null
python3 - "$tmp/out.json" <<'PY'
import json, sys
print("| workload | median | min |")
print("|---|---|---|")
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| {r['command']} | {r['median']*1000:.1f} ms | {r['min']*1000:.1f} ms |")
PY
