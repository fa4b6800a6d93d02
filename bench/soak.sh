#!/usr/bin/env bash
# Soak (issue 20), as root: WORKERS parallel workers × ROUNDS rounds of
# `run -d` / `exec` / `stop` / `rm -f -v` on one throwaway state root, with
# restart policies (always, on-failure, unless-stopped, a restart loop),
# healthchecks, published ports (tcp and udp on 127.0.0.1) and named and
# anonymous volumes mixed; then checks that no container or volume is left,
# that `berth system check` says what it said before the soak, and that the
# host's veths on the root's bridge and mounts under the root are as
# before, and no cgroup, veth or firewall rule names a soak container.
#
#   bench/soak.sh                     4 × 100, release build
#   WORKERS=8 ROUNDS=20 bench/soak.sh
#   BERTH=target/debug/berth bench/soak.sh
#
# Prints one line per worker, the totals and the time taken; exits 1 if
# anything was left behind or a step failed. CI runs the short version
# (crates/cli/tests/soak.rs, 4 × 8).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-4}
ROUNDS=${ROUNDS:-100}
if [[ -z "${BERTH:-}" ]]; then
    cargo build --release -q -p cli --bin berth
    BERTH=${CARGO_TARGET_DIR:-target}/release/berth
fi
BERTH=$(realpath "$BERTH")
[[ $(id -u) == 0 ]] || { echo "soak.sh: run as root" >&2; exit 1; }

tmp=$(mktemp -d /var/tmp/berth-soak.XXXXXX)
export BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/run BERTH_CONFIG=$tmp/cfg
mkdir -p "$BERTH_CONFIG"
printf '[network]\nip_forward = false\n' > "$BERTH_CONFIG/berth.toml"
cleanup() {
    "$BERTH" system reset -f >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

scripts/busybox-rootfs | "$BERTH" import -c 'CMD ["sh"]' - soak:bb >/dev/null
# The default bridge is made on first use: before the census is taken.
"$BERTH" run -d --name warm -p 127.0.0.1::80 soak:bb sleep 100 >/dev/null
"$BERTH" rm -f warm >/dev/null

host_state() {
    # What this root has on the host: mounts under its state dir, berth's
    # cgroup dirs and the veths of its bridge (other roots' and other
    # engines' objects are left out: they may come and go meanwhile).
    grep -F "$tmp" /proc/self/mountinfo | awk '{print $5}' | sort || true
    local br
    br=$("$BERTH" network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' bridge 2>/dev/null || true)
    [[ -n $br ]] && { ip -o link show master "$br" | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; } || true
}
leftovers() {
    # Anything naming one of the soak's containers: processes (the
    # containers' cgroups), cgroup dirs, veths, firewall rules.
    local id
    local links rules
    links=$(ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//')
    rules=$(nft list table ip berth 2>/dev/null || true)
    while read -r id; do
        [[ -n $id ]] || continue
        ls -d /sys/fs/cgroup/*/berth/"$id" 2>/dev/null || true
        grep "^vb${id:0:6}" <<<"$links" || true
        grep -F "$id" <<<"$rules" || true
    done <"$tmp/ids"
}
before_census=$("$BERTH" system check --quick)
before_host=$(host_state)

worker() {
    local w=$1 r kind name fails=0 ok=0
    for ((r = 0; r < ROUNDS; r++)); do
        name=soak-$w-$r
        kind=$(((w + r) % 4))
        case $kind in
        0) set -- --restart always -p 127.0.0.1::80 -v "soak$w:/data" soak:bb sh -c 'echo up > /data/f; exec sleep 1000' ;;
        1) set -- --restart on-failure:3 --health-cmd 'test -e /proc/1' --health-interval 1s soak:bb sleep 1000 ;;
        2) set -- --restart unless-stopped -v /anon -p 127.0.0.1::8080 -p 127.0.0.1::53/udp soak:bb sleep 1000 ;;
        3) set -- --restart always -p 127.0.0.1::80 --health-cmd true soak:bb sh -c 'exit 1' ;;
        esac
        if ! "$BERTH" run -d --name "$name" "$@" >>"$tmp/ids"; then
            echo "worker $w round $r: run -d failed" >&2
            fails=$((fails + 1))
            continue
        fi
        if ((kind != 3)); then
            if [[ $("$BERTH" exec "$name" echo ok) != ok ]]; then
                echo "worker $w round $r: exec failed" >&2
                fails=$((fails + 1))
            fi
            if ((r % 2 == 0)) && ! "$BERTH" stop -t 1 "$name" >/dev/null; then
                echo "worker $w round $r: stop failed" >&2
                fails=$((fails + 1))
            fi
        fi
        if ! "$BERTH" rm -f -v "$name" >/dev/null; then
            echo "worker $w round $r: rm -f failed" >&2
            fails=$((fails + 1))
        fi
        ok=$((ok + 1))
    done
    echo "worker $w: $ok rounds, $fails failures"
    ((fails == 0))
}

start=$(date +%s.%N)
pids=()
for ((w = 0; w < WORKERS; w++)); do
    worker "$w" &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
end=$(date +%s.%N)

for ((w = 0; w < WORKERS; w++)); do
    "$BERTH" volume rm "soak$w" >/dev/null 2>&1 || true
done
left_containers=$("$BERTH" ps -a -q)
left_volumes=$("$BERTH" volume ls -q)
after_census=$("$BERTH" system check --quick) || failed=1
after_host=$(host_state)
left=$(leftovers)

printf 'soak: %d workers × %d rounds in %.1f s\n' "$WORKERS" "$ROUNDS" "$(echo "$end - $start" | bc)"
[[ -z $left_containers ]] || { echo "containers left: $left_containers"; failed=1; }
[[ -z $left_volumes ]] || { echo "volumes left: $left_volumes"; failed=1; }
if [[ $before_census != "$after_census" ]]; then
    printf 'census before: %s\ncensus after:  %s\n' "$before_census" "$after_census"
    failed=1
fi
if [[ $before_host != "$after_host" ]]; then
    echo "host state differs:"
    diff <(echo "$before_host") <(echo "$after_host") || true
    failed=1
fi
[[ -z $left ]] || { echo "left on the host: $left"; failed=1; }
echo "census: $after_census"
((failed == 0)) && echo "soak: clean" || { echo "soak: FAILED"; exit 1; }
