#!/usr/bin/env bash
# berth scan benchmark (issue 22): a Debian-based Python image (debootstrap
# bookworm minbase + apt-get install python3, ~300 MB) scanned against a
# generated OSV database of 500,000 advisories (Debian:12 entries for every
# source package of the image and 2,000 others, the rest PyPI, npm, Go and
# crates.io), release build, as root.
#
#   bench/scan.sh        prints the image's size and package count, the
#                        import time and the median of 10 scans (hyperfine)
#
# Throwaway state root under /var/tmp; the debootstrap needs Debian's mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/scan.sh: run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
[ -n "${BERTH:-}" ] || { cargo build --release -q -p cli --bin berth; BERTH=${CARGO_TARGET_DIR:-$PWD/target}/release/berth; }
N=${N:-500000}
tmp=$(mktemp -d /var/tmp/berth-scan-bench.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/config
mkdir -p "$BERTH_CONFIG" && printf '[network]\nip_forward = false\n' > "$BERTH_CONFIG/berth.toml"
cleanup() { "$BERTH" system reset -f >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
debootstrap --variant=minbase bookworm "$tmp/deb" "${mirror:-http://deb.debian.org/debian}" >/dev/null
tar -C "$tmp/deb" -c . | "$BERTH" import - debian:bookworm >/dev/null
rm -rf "$tmp/deb"
mkdir -p "$tmp/ctx"
printf 'FROM debian:bookworm\nRUN --network=host apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null && rm -rf /var/lib/apt/lists/*\n' > "$tmp/ctx/Dockerfile"
"$BERTH" build -q --allow network.host -t pyapp:1 "$tmp/ctx" >/dev/null
size=$("$BERTH" images --format '{{.Size}}' pyapp:1)
"$BERTH" sbom pyapp:1 > "$tmp/sbom.txt"
pkgs=$(($(wc -l < "$tmp/sbom.txt") - 1))
# The sources of the image's Debian packages, from its dpkg status.
"$BERTH" run --rm --network none pyapp:1 dpkg-query -W -f '${source:Package}\n' | sort -u > "$tmp/sources.txt"

python3 - "$tmp/osv.zip" "$tmp/sources.txt" "$N" <<'PY'
import json, random, sys, zipfile
out, sources, n = sys.argv[1], open(sys.argv[2]).read().split(), int(sys.argv[3])
random.seed(22)
debian = sources + [f"src{i}" for i in range(2000)]
ecos = [("PyPI", "pypkg"), ("npm", "npmpkg"), ("Go", "example.com/mod"), ("crates.io", "crate")]
cvss = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N"
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
    for i in range(n):
        if i % 5 == 0:
            eco, name = "Debian:12", debian[i // 5 % len(debian)]
            ev = [{"introduced": "0"}, {"fixed": f"{random.randint(0, 3)}.{random.randint(0, 40)}-{random.randint(1, 9)}+deb12u{random.randint(1, 5)}"}]
            kind = "ECOSYSTEM"
        else:
            eco, base = ecos[i % 4]
            name = f"{base}{random.randint(0, 60000)}"
            ev = [{"introduced": "0"}, {"fixed": f"{random.randint(0, 9)}.{random.randint(0, 30)}.{random.randint(0, 9)}"}]
            kind = "SEMVER" if eco != "PyPI" else "ECOSYSTEM"
        rec = {"schema_version": "1.6.0", "id": f"BENCH-{i}", "modified": "2026-01-01T00:00:00Z",
               "aliases": [f"CVE-2026-{i}"], "summary": f"generated advisory {i} for {name}",
               "severity": [{"type": "CVSS_V3", "score": cvss}],
               "affected": [{"package": {"ecosystem": eco, "name": name},
                             "ranges": [{"type": kind, "events": ev}]}]}
        z.writestr(f"BENCH-{i}.json", json.dumps(rec))
PY
start=$(date +%s.%N)
"$BERTH" scan db import "$tmp/osv.zip" >/dev/null
import_s=$(echo "$(date +%s.%N) - $start" | bc)
db_size=$(du -h "$BERTH_ROOT/supply/osv/osv.db" | cut -f1)
findings=$("$BERTH" scan --db-max-age 0 --format json pyapp:1 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["findings"]))')
hyperfine -N -w 2 -r 10 --export-json "$tmp/h.json" "$BERTH scan --db-max-age 0 --format json -o $tmp/r.json pyapp:1" >/dev/null 2>&1
median=$(python3 -c "import json; print('%.0f ms' % (json.load(open('$tmp/h.json'))['results'][0]['median'] * 1000))")
echo "image pyapp:1 (debootstrap bookworm minbase + python3): $size, $pkgs packages, $(wc -l < "$tmp/sources.txt") Debian source packages"
echo "OSV database: $N advisories, import ${import_s%.*} s (one zip), osv.db $db_size"
echo "berth scan pyapp:1 (JSON, $findings findings): median $median of 10 (hyperfine -N -w 2 -r 10)"
