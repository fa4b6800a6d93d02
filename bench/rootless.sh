#!/usr/bin/env bash
# `run --rm IMAGE true`, rootful and rootless (issue 23), run as root.
#
#   BERTH=target/release/berth RUNS=30 bash bench/rootless.sh
#   PODMAN=1 …   also podman 4.3 rootless, as the same user (the peer;
#                its default network here is slirp4netns; runc, as crun
#                refuses this hybrid cgroup host). Never with
#                --log-level=debug: conmon then waits out a 20 s timeout
#                per run here (its debug log goes to a syslog this host
#                does not have).
#
# BERTH defaults to $CARGO_TARGET_DIR/release/berth, else target/release/berth.
# Holds /run/lock/berth-rootless-tests.lock (as crates/cli/tests/rootless.rs
# does) while /etc/subuid, /etc/subgid and /dev/net/tun are edited, so a
# test run in another checkout cannot restore them under it.
#
# Makes a user of its own (useradd, subordinate ids appended to
# /etc/subuid and /etc/subgid; both files are restored byte for byte, the
# user, its processes and its files removed at the end). The rootless rows
# run berth through `setpriv` as that user; the `setpriv … /bin/true` row
# is what that costs by itself (the default rootless row is slirp4netns',
# berth's default where installed; the last is pasta). /dev/net/tun is made 0666 for the network
# rows where the host left it 0600 (udev's mode on Debian), and its mode
# restored.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
BERTH=${BERTH:-${CARGO_TARGET_DIR:-$PWD/target}/release/berth}
[ -x "$BERTH" ] || { echo "bench/rootless.sh: no berth at $BERTH (cargo build --release -p cli, or set BERTH)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench/rootless.sh: run as root" >&2; exit 1; }
command -v newuidmap >/dev/null || { echo "bench/rootless.sh: apt-get install uidmap" >&2; exit 1; }
exec 9>>/run/lock/berth-rootless-tests.lock
flock 9
tmp=$(mktemp -d /var/tmp/berth-bench-rootless.XXXXXX)
chmod 755 "$tmp"
user=brlbench$$
cp /etc/subuid "$tmp/subuid.saved"; cp /etc/subgid "$tmp/subgid.saved"
tun_mode=$(stat -c %a /dev/net/tun)
cleanup() {
  set +e
  runas "$tmp/berth" system reset -f >/dev/null 2>&1
  [ -n "${PODMAN:-}" ] && runas podman system reset -f >/dev/null 2>&1
  uid=$(id -u "$user" 2>/dev/null) && for p in /proc/[0-9]*; do
    [ "$(awk '/^Uid:/{print $2}' "$p/status" 2>/dev/null)" = "$uid" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 0.5
  userdel "$user" >/dev/null 2>&1
  cp "$tmp/subuid.saved" /etc/subuid; cp "$tmp/subgid.saved" /etc/subgid
  chmod "$tun_mode" /dev/net/tun
  BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/rootrun BERTH_CONFIG=$tmp/config "$BERTH" system reset -f >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
useradd -M -d "$tmp/home" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
uid=$(id -u "$user")
echo "$user:2100000000:65536" >> /etc/subuid
echo "$user:2100000000:65536" >> /etc/subgid
mkdir -m 700 "$tmp/home" "$tmp/run"; chown "$user:" "$tmp/home" "$tmp/run"
chmod 666 /dev/net/tun
cp "$BERTH" "$tmp/berth"; chmod 755 "$tmp/berth"
scripts/busybox-rootfs > "$tmp/bb.tar"; chmod 644 "$tmp/bb.tar"
runas() {
  setpriv --reuid "$uid" --regid "$uid" --init-groups -- \
    env -i HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" PATH=/usr/bin:/bin:/usr/sbin:/sbin "$@"
}
S="setpriv --reuid $uid --regid $uid --init-groups -- env -i HOME=$tmp/home XDG_RUNTIME_DIR=$tmp/run PATH=/usr/bin:/bin:/usr/sbin:/sbin"
R="env BERTH_ROOT=$tmp/root BERTH_RUNROOT=$tmp/rootrun BERTH_CONFIG=$tmp/config"
mkdir -p "$tmp/config"; printf '[network]\nip_forward = false\n' > "$tmp/config/berth.toml"
$R "$BERTH" import - bench:busybox < "$tmp/bb.tar" >/dev/null
$S "$tmp/berth" import - bench:busybox < "$tmp/bb.tar" >/dev/null
cmds=(
  "$S /bin/true"
  "$R $BERTH run --rm --network none bench:busybox true"
  "$S $tmp/berth run --rm --network none bench:busybox true"
  "$R $BERTH run --rm bench:busybox true"
  "$S $tmp/berth run --rm bench:busybox true"
  "$S $tmp/berth run --rm --network pasta bench:busybox true"
)
if [ -n "${PODMAN:-}" ]; then
  $S podman import "$tmp/bb.tar" bench:busybox >/dev/null
  # crun 1.8 refuses this hybrid cgroup host: runc, as for rootful podman.
  cmds+=("$S podman run --rm --runtime runc --network none bench:busybox true")
  cmds+=("$S podman run --rm --runtime runc bench:busybox true")
fi
hyperfine -N -w 3 -r "$RUNS" "${cmds[@]}"
