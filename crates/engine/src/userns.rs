//! `--userns`, `--uidmap`, `--gidmap` (podman's flags and meanings) for
//! rootful berth: the container gets a user namespace whose root is an
//! unprivileged host id.
//!
//! `auto` gives each container a range of its own from the subordinate
//! ids of a user (podman's convention: the `containers` user's lines of
//! `/etc/subuid` and `/etc/subgid`; `[userns]` in berth.toml names
//! another user or other files). The range is chosen inside the store
//! transaction that records the container, among the ranges no other
//! container's config holds, so two creates never get the same one; it is
//! free again once the container is removed (its row is gone).
//! `auto:uidmapping=…,gidmapping=…` forces lines into the maps besides
//! that range. `container:NAME` and `ns:PATH` join a user namespace that
//! exists (the runtime's `userns` module says how); the container's maps
//! are then that namespace's.
use std::path::{Path, PathBuf};

use crate::config::{IdMapping, UserNs};
use crate::error::{EngineError, Result};

/// podman's default size of an `auto` range (containers.conf `userns_size`).
pub const AUTO_SIZE: u32 = 65536;

/// `[userns]` of berth.toml.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsernsSettings {
    /// Whose subordinate ids `--userns=auto` hands out (`containers`).
    pub auto_user: String,
    /// The subordinate uid file (`/etc/subuid`).
    pub subuid_file: PathBuf,
    /// The subordinate gid file (`/etc/subgid`).
    pub subgid_file: PathBuf,
}

impl Default for UsernsSettings {
    fn default() -> Self {
        UsernsSettings {
            auto_user: "containers".into(),
            subuid_file: "/etc/subuid".into(),
            subgid_file: "/etc/subgid".into(),
        }
    }
}

/// The identity map of the host's user namespace (`/proc/self/uid_map`
/// of a root process): what `keep-id` as root copies.
pub const IDENTITY: IdMapping = IdMapping {
    container_id: 0,
    host_id: 0,
    size: u32::MAX,
};

/// What the create asked for, before an `auto` range is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The host's user namespace (`host`, or nothing given).
    Host,
    /// A range of `size` ids of the auto user's, besides the mappings
    /// forced with `uidmapping=`/`gidmapping=` (podman's
    /// `auto:uidmapping=CONTAINER_ID:HOST_ID:SIZE`), whose container ids
    /// the auto range leaves out.
    Auto {
        /// How many ids.
        size: u32,
        /// `uidmapping=` lines, as given.
        uid: Vec<IdMapping>,
        /// `gidmapping=` lines, as given.
        gid: Vec<IdMapping>,
    },
    /// `container:NAME|ID`: that container's user namespace.
    Container(String),
    /// `ns:PATH`: the user namespace at PATH.
    Path(PathBuf),
    /// podman's `keep-id[:uid=N,gid=N]` (rootless only): the user's ids
    /// are the same inside (or `uid`/`gid`).
    KeepId {
        /// `uid=N`.
        uid: Option<u32>,
        /// `gid=N`.
        gid: Option<u32>,
    },
    /// `keep-id` as root (podman ≥ 4.4's): a user namespace of the
    /// container's own whose maps copy root's (the identity), so its ids
    /// are the host's; root stays root, but its capabilities are those of
    /// its own namespace.
    KeepIdRoot,
    /// podman's `nomap` (rootless only): the container's ids are the
    /// user's subordinate ids, the user itself is none of them.
    NoMap,
    /// The maps given with `--uidmap`/`--gidmap`.
    Maps {
        /// uid map.
        uid: Vec<IdMapping>,
        /// gid map (the uid map when only `--uidmap` was given, as podman).
        gid: Vec<IdMapping>,
    },
}

fn bad(flag: &str, reason: impl Into<String>) -> EngineError {
    EngineError::invalid(flag, reason)
}

/// Parse `--userns` with `--uidmap`/`--gidmap` (podman's rules);
/// `rootless`: berth runs rootless (where `keep-id` is taken).
pub fn parse(
    mode: Option<&str>,
    uidmap: &[String],
    gidmap: &[String],
    rootless: bool,
) -> Result<Request> {
    let mode = mode.unwrap_or("").trim();
    if !uidmap.is_empty() || !gidmap.is_empty() {
        if !mode.is_empty() && mode != "private" {
            return Err(bad(
                "--userns",
                format!("--userns={mode} and --uidmap/--gidmap cannot be used together"),
            ));
        }
        let uid = if uidmap.is_empty() {
            parse_maps("--gidmap", gidmap)?
        } else {
            parse_maps("--uidmap", uidmap)?
        };
        let gid = if gidmap.is_empty() {
            uid.clone()
        } else {
            parse_maps("--gidmap", gidmap)?
        };
        return Ok(Request::Maps { uid, gid });
    }
    let (kind, opts) = mode.split_once(':').unwrap_or((mode, ""));
    match kind {
        "" | "host" if opts.is_empty() => Ok(Request::Host),
        "auto" => parse_auto(opts),
        "container" if !opts.is_empty() => Ok(Request::Container(opts.to_string())),
        "ns" if opts.starts_with('/') => Ok(Request::Path(PathBuf::from(opts))),
        "container" | "ns" => Err(bad(
            "--userns",
            format!("{mode:?}: give container:NAME (or ID) or ns:/ABSOLUTE/PATH"),
        )),
        "keep-id" if rootless => {
            let (mut uid, mut gid) = (None, None);
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                let num = |n: &str| {
                    n.parse::<u32>().map_err(|_| {
                        bad("--userns", format!("keep-id: invalid {o:?}: a number is expected"))
                    })
                };
                match o.split_once('=') {
                    Some(("uid", n)) => uid = Some(num(n)?),
                    Some(("gid", n)) => gid = Some(num(n)?),
                    _ => {
                        return Err(bad(
                            "--userns",
                            format!("keep-id: option {o:?} is not supported (berth takes uid=N,gid=N)"),
                        ))
                    }
                }
            }
            Ok(Request::KeepId { uid, gid })
        }
        "keep-id" if opts.is_empty() => Ok(Request::KeepIdRoot),
        "keep-id" => Err(bad(
            "--userns",
            format!("keep-id:{opts} as root: the uid and gid options need rootless berth (as root keep-id keeps root's own ids, in a user namespace of the container's; for other ids use --userns=auto or --uidmap)"),
        )),
        "nomap" if rootless && opts.is_empty() => Ok(Request::NoMap),
        "nomap" if rootless => Err(bad(
            "--userns",
            format!("nomap takes no options ({opts:?} given)"),
        )),
        "nomap" => Err(bad(
            "--userns",
            "nomap is only supported in rootless mode (berth runs as root here; use --userns=auto or --uidmap)",
        )),
        _ => Err(bad(
            "--userns",
            format!("{mode:?} is not supported: use host, auto[:size=N,uidmapping=C:H:N,gidmapping=C:H:N], container:NAME, ns:PATH, or --uidmap/--gidmap"),
        )),
    }
}

/// `auto[:OPTIONS]`, podman's options and words (`GetAutoOptions`):
/// `size=N`, `uidmapping=C:H:N` and `gidmapping=C:H:N`, each mapping
/// option as often as wanted.
fn parse_auto(opts: &str) -> Result<Request> {
    let (mut size, mut uid, mut gid) = (AUTO_SIZE, Vec::new(), Vec::new());
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let Some((key, val)) = o.split_once('=') else {
            return Err(bad(
                "--userns",
                format!("auto: invalid option specified: {o:?} (options are size=N, uidmapping=CONTAINER_ID:HOST_ID:SIZE, gidmapping=CONTAINER_ID:HOST_ID:SIZE)"),
            ));
        };
        match key {
            "size" => {
                size = val.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    bad(
                        "--userns",
                        format!("auto: invalid size {val:?}: a positive number of ids"),
                    )
                })?
            }
            "uidmapping" => uid.push(forced_mapping("UID", val)?),
            "gidmapping" => gid.push(forced_mapping("GID", val)?),
            _ => {
                return Err(bad(
                    "--userns",
                    format!("auto: unknown option specified: {key:?} (options are size=N, uidmapping=CONTAINER_ID:HOST_ID:SIZE, gidmapping=CONTAINER_ID:HOST_ID:SIZE)"),
                ))
            }
        }
    }
    for (what, maps) in [("uidmapping", &uid), ("gidmapping", &gid)] {
        if let Some((a, b)) = overlapping(maps) {
            return Err(bad(
                "--userns",
                format!(
                    "auto: {what}s {}:{}:{} and {}:{}:{} overlap",
                    a.container_id, a.host_id, a.size, b.container_id, b.host_id, b.size
                ),
            ));
        }
    }
    Ok(Request::Auto { size, uid, gid })
}

/// One `uidmapping=`/`gidmapping=` of `auto`: exactly three numbers
/// (podman: `UID setting is malformed expected ["uint32:uint32:uint32"]`).
fn forced_mapping(kind: &str, val: &str) -> Result<IdMapping> {
    let nums: Option<Vec<u32>> = val.split(':').map(|n| n.parse().ok()).collect();
    let m = match nums.as_deref() {
        Some([c, h, n]) if *n > 0 => IdMapping {
            container_id: *c,
            host_id: *h,
            size: *n,
        },
        _ => {
            return Err(bad(
                "--userns",
                format!(
                    "auto: {}mapping={val:?}: {kind} setting is malformed expected [\"uint32:uint32:uint32\"] (CONTAINER_ID:HOST_ID:SIZE, SIZE above 0)",
                    kind.to_ascii_lowercase()
                ),
            ))
        }
    };
    if m.container_id.checked_add(m.size).is_none() || m.host_id.checked_add(m.size).is_none() {
        return Err(bad(
            "--userns",
            format!(
                "auto: {}mapping={val:?}: the ids must stay below 2^32",
                kind.to_ascii_lowercase()
            ),
        ));
    }
    Ok(m)
}

/// Two mappings that share a container id or a host id.
fn overlapping(maps: &[IdMapping]) -> Option<(IdMapping, IdMapping)> {
    let overlaps = |a: u32, n: u32, b: u32, k: u32| {
        u64::from(a) < u64::from(b) + u64::from(k) && u64::from(b) < u64::from(a) + u64::from(n)
    };
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            if overlaps(a.container_id, a.size, b.container_id, b.size)
                || overlaps(a.host_id, a.size, b.host_id, b.size)
            {
                return Some((*a, *b));
            }
        }
    }
    None
}

/// `CONTAINER:HOST[:SIZE]` (podman's `--uidmap`; SIZE defaults to 1), each
/// flag a line; the lines may not overlap inside nor outside.
pub fn parse_maps(flag: &str, specs: &[String]) -> Result<Vec<IdMapping>> {
    let mut out = Vec::new();
    for spec in specs {
        for one in spec.split(',').filter(|s| !s.is_empty()) {
            let nums: Vec<&str> = one.split(':').collect();
            let parsed: Option<Vec<u32>> = nums.iter().map(|n| n.trim().parse().ok()).collect();
            let m = match parsed.as_deref() {
                Some([c, h]) => IdMapping {
                    container_id: *c,
                    host_id: *h,
                    size: 1,
                },
                Some([c, h, s]) => IdMapping {
                    container_id: *c,
                    host_id: *h,
                    size: *s,
                },
                _ => {
                    return Err(bad(
                        flag,
                        format!("invalid mapping {one:?}: expected CONTAINER_ID:HOST_ID:SIZE"),
                    ))
                }
            };
            if m.size == 0
                || m.container_id.checked_add(m.size).is_none()
                || m.host_id.checked_add(m.size).is_none()
            {
                return Err(bad(
                    flag,
                    format!("invalid mapping {one:?}: the size must be positive and the ids stay below 2^32"),
                ));
            }
            out.push(m);
        }
    }
    if let Some((a, b)) = overlapping(&out) {
        return Err(bad(
            flag,
            format!(
                "mappings {}:{}:{} and {}:{}:{} overlap",
                a.container_id, a.host_id, a.size, b.container_id, b.host_id, b.size
            ),
        ));
    }
    if out.len() > 340 {
        return Err(bad(flag, "at most 340 mappings (the kernel's limit)"));
    }
    if IdMapping::host_of(&out, 0).is_none() {
        return Err(bad(
            flag,
            "the container's id 0 must be mapped (its root sets the container up)",
        ));
    }
    Ok(out)
}

/// The `(start, count)` ranges of `user` in a subordinate id file
/// (`name:start:count` lines).
pub fn subordinate_ranges(text: &str, user: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            match f.as_slice() {
                [name, start, count] if *name == user => {
                    Some((start.parse().ok()?, count.parse().ok()?))
                }
                _ => None,
            }
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The first `size` ids of `available` that no range of `taken` holds.
pub fn first_fit(available: &[(u32, u32)], taken: &[(u32, u32)], size: u32) -> Option<u32> {
    let mut taken: Vec<(u64, u64)> = taken
        .iter()
        .map(|(s, n)| (u64::from(*s), u64::from(*s) + u64::from(*n)))
        .collect();
    taken.sort_unstable();
    for (start, count) in available {
        let (mut at, end) = (u64::from(*start), u64::from(*start) + u64::from(*count));
        for (ts, te) in &taken {
            if *te <= at || *ts >= end {
                continue;
            }
            if *ts >= at + u64::from(size) {
                break;
            }
            at = at.max(*te);
        }
        if at + u64::from(size) <= end {
            return u32::try_from(at).ok();
        }
    }
    None
}

/// The auto user's ranges in one file, with an error that says what to add.
fn ranges_of(file: &Path, user: &str, size: u32) -> Result<Vec<(u32, u32)>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(EngineError::io(format!("reading {}", file.display()), e)),
    };
    let r = subordinate_ranges(&text, user);
    if r.is_empty() {
        return Err(bad(
            "--userns",
            format!(
                "auto: {} has no range for user {user:?}; add one (e.g. \"{user}:2147483647:2147483648\", podman's convention), or name another user with [userns] auto_user in berth.toml (need at least {size} ids)",
                file.display()
            ),
        ));
    }
    Ok(r)
}

/// Host id ranges, `(start, count)`, of uids and of gids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    /// uid ranges.
    pub uids: Vec<(u32, u32)>,
    /// gid ranges.
    pub gids: Vec<(u32, u32)>,
}

/// The ranges `auto` may hand out.
pub fn auto_pool(s: &UsernsSettings, size: u32) -> Result<Ranges> {
    Ok(Ranges {
        uids: ranges_of(&s.subuid_file, &s.auto_user, size)?,
        gids: ranges_of(&s.subgid_file, &s.auto_user, size)?,
    })
}

/// The host ranges the other containers' configs hold.
pub fn taken_by(configs: &[serde_json::Value]) -> Ranges {
    let (mut uids, mut gids) = (Vec::new(), Vec::new());
    // Root's identity map (`keep-id` as root) holds no range of its own.
    let ranged = |m: &&IdMapping| **m != IDENTITY;
    for c in configs {
        let Some(u) = c.get("userns") else { continue };
        let Ok(u) = serde_json::from_value::<UserNs>(u.clone()) else {
            continue;
        };
        uids.extend(u.uid_map.iter().filter(ranged).map(|m| (m.host_id, m.size)));
        gids.extend(u.gid_map.iter().filter(ranged).map(|m| (m.host_id, m.size)));
    }
    Ranges { uids, gids }
}

/// Rootless: the ranges `auto` may hand out are the ids of berth's own
/// user namespace but its 0 (the user): `1..N`, the user's subordinate
/// ids as the namespace numbers them — what containers/storage's
/// `getAvailableIDs` gives a rootless podman.
pub fn rootless_pool() -> Ranges {
    let ids = |file| {
        let n = crate::container::copyroot::namespace_size(file);
        if n > 1 {
            vec![(1, n - 1)]
        } else {
            Vec::new()
        }
    };
    Ranges {
        uids: ids("/proc/self/uid_map"),
        gids: ids("/proc/self/gid_map"),
    }
}

/// podman's rootless `nomap` map over a namespace of `size` ids: the
/// container's `0..size-1` are the namespace's `1..size` (its subordinate
/// ids), the user (the namespace's 0) is not mapped.
pub fn nomap(flag: &str, size: u32) -> Result<Vec<IdMapping>> {
    if size < 2 {
        return Err(bad(
            flag,
            "nomap requires additional UIDs or GIDs defined in /etc/subuid and /etc/subgid to function correctly",
        ));
    }
    Ok(vec![IdMapping {
        container_id: 0,
        host_id: 1,
        size: size - 1,
    }])
}

/// Rootless `--uidmap`/`--gidmap`: the HOST ids are ids of berth's user
/// namespace (0 is the user, `1..size` its subordinate ids, as in
/// rootless podman), so each range must lie below `size`.
pub fn check_inside(flag: &str, maps: &[IdMapping], size: u32) -> Result<()> {
    for m in maps {
        if u64::from(m.host_id) + u64::from(m.size) > u64::from(size) {
            return Err(bad(
                flag,
                format!(
                    "mapping {}:{}:{} goes past the {size} ids of rootless berth's user namespace: its HOST ids are ids of that namespace (0 is you, 1..{} your subordinate ids; see \"berth unshare cat /proc/self/uid_map\"); map below {size}, or give the user more subordinate ids",
                    m.container_id,
                    m.host_id,
                    m.size,
                    size.saturating_sub(1)
                ),
            ));
        }
    }
    Ok(())
}

/// Rootless: how a copied root's owners are stored for a container with
/// these maps (see [`store::fsops::IdShift`]); an id the maps leave out
/// becomes the kernel's overflow id, as containers/storage does.
pub fn rootless_shift(u: &UserNs) -> store::fsops::IdShift {
    let overflow = |file: &str| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(65534)
    };
    let ranges = |m: &[IdMapping]| -> Vec<(u32, u32, u32)> {
        m.iter()
            .map(|r| (r.container_id, r.host_id, r.size))
            .collect()
    };
    store::fsops::IdShift {
        uids: ranges(&u.uid_map),
        gids: ranges(&u.gid_map),
        overflow: (
            overflow("/proc/sys/kernel/overflowuid"),
            overflow("/proc/sys/kernel/overflowgid"),
        ),
    }
}

/// Why no range of `size` ids was found in `pool` (`what`: uid or gid).
fn no_room(pool: &[(u32, u32)], what: &str, size: u32, rootless: bool) -> String {
    let has: u64 = pool.iter().map(|(_, n)| u64::from(*n)).sum();
    if rootless && has < u64::from(size) {
        format!(
            "--userns=auto: rootless berth's user namespace has {has} {what}s to give (the user's subordinate ids), fewer than the {size} asked for; ask for fewer with --userns=auto:size=N, or give the user more subordinate ids"
        )
    } else if rootless {
        format!(
            "--userns=auto: no free range of {size} {what}s is left in rootless berth's user namespace (the user's {has} subordinate ids; other containers hold the rest); remove containers, ask for fewer with --userns=auto:size=N, or give the user more subordinate ids"
        )
    } else {
        format!(
            "--userns=auto: no free range of {size} {what}s is left in the auto user's subordinate ids (the other containers hold the rest); remove containers, or add ranges"
        )
    }
}

/// Choose an `auto` range of `size` ids among `pool` outside `taken`
/// (`rootless`: the pool is berth's user namespace, which the error
/// names).
pub fn allocate(
    pool: &Ranges,
    taken: &Ranges,
    size: u32,
    rootless: bool,
) -> std::result::Result<(u32, u32), String> {
    let uid = first_fit(&pool.uids, &taken.uids, size)
        .ok_or_else(|| no_room(&pool.uids, "uid", size, rootless))?;
    let gid = first_fit(&pool.gids, &taken.gids, size)
        .ok_or_else(|| no_room(&pool.gids, "gid", size, rootless))?;
    Ok((uid, gid))
}

/// The container ids of `0..size` no `forced` mapping holds, as
/// `(start, count)` intervals: what the auto range maps.
fn left_to_auto(size: u32, forced: &[IdMapping]) -> Vec<(u32, u32)> {
    let mut held: Vec<(u64, u64)> = forced
        .iter()
        .map(|m| {
            let s = u64::from(m.container_id);
            (s, s + u64::from(m.size))
        })
        .collect();
    held.sort_unstable();
    let (mut out, mut at, end) = (Vec::new(), 0u64, u64::from(size));
    for (s, e) in held {
        if s > at && at < end {
            out.push((at, s.min(end) - at));
        }
        at = at.max(e);
    }
    if at < end {
        out.push((at, end - at));
    }
    out.into_iter().map(|(s, n)| (s as u32, n as u32)).collect()
}

/// One kind's `auto` map: the container ids `0..size` the forced
/// mappings leave out, over one free range of the pool (outside `taken`
/// and the forced host ids), then the forced mappings as given
/// (containers/storage's `getAutoUserNSIDMappings`).
fn auto_map(
    pool: &[(u32, u32)],
    taken: &[(u32, u32)],
    size: u32,
    forced: &[IdMapping],
    what: &str,
    rootless: bool,
) -> std::result::Result<Vec<IdMapping>, String> {
    let holes = left_to_auto(size, forced);
    let count: u32 = holes.iter().map(|(_, n)| n).sum();
    let mut out = Vec::new();
    if count > 0 {
        let mut taken = taken.to_vec();
        taken.extend(forced.iter().map(|m| (m.host_id, m.size)));
        let mut host =
            first_fit(pool, &taken, count).ok_or_else(|| no_room(pool, what, count, rootless))?;
        for (start, n) in holes {
            out.push(IdMapping {
                container_id: start,
                host_id: host,
                size: n,
            });
            host += n;
        }
    }
    out.extend_from_slice(forced);
    Ok(out)
}

/// The uid and gid maps of `--userns=auto:size=N,uidmapping=…,gidmapping=…`.
pub fn auto_maps(
    pool: &Ranges,
    taken: &Ranges,
    size: u32,
    (uid, gid): (&[IdMapping], &[IdMapping]),
    rootless: bool,
) -> std::result::Result<(Vec<IdMapping>, Vec<IdMapping>), String> {
    Ok((
        auto_map(&pool.uids, &taken.uids, size, uid, "uid", rootless)?,
        auto_map(&pool.gids, &taken.gids, size, gid, "gid", rootless)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_maps() {
        assert_eq!(parse(None, &[], &[], false).unwrap(), Request::Host);
        assert_eq!(parse(Some("host"), &[], &[], false).unwrap(), Request::Host);
        assert_eq!(
            parse(Some("auto"), &[], &[], false).unwrap(),
            Request::Auto {
                size: AUTO_SIZE,
                uid: vec![],
                gid: vec![]
            }
        );
        assert_eq!(
            parse(Some("auto:size=1024"), &[], &[], false).unwrap(),
            Request::Auto {
                size: 1024,
                uid: vec![],
                gid: vec![]
            }
        );
        assert_eq!(
            parse(Some("container:web"), &[], &[], false).unwrap(),
            Request::Container("web".into())
        );
        assert_eq!(
            parse(Some("ns:/proc/7/ns/user"), &[], &[], false).unwrap(),
            Request::Path("/proc/7/ns/user".into())
        );
        for bad in ["container:", "ns:", "ns:relative/path"] {
            assert!(parse(Some(bad), &[], &[], false).is_err(), "{bad}");
        }
        assert!(parse(Some("auto:size=0"), &[], &[], false).is_err());
        assert_eq!(
            parse(Some("keep-id"), &[], &[], false).unwrap(),
            Request::KeepIdRoot
        );
        assert!(parse(Some("keep-id:uid=5"), &[], &[], false)
            .unwrap_err()
            .to_string()
            .contains("need rootless berth"));
        assert!(parse(Some("nomap"), &[], &[], false).is_err());
        assert_eq!(
            parse(Some("nomap"), &[], &[], true).unwrap(),
            Request::NoMap
        );
        assert_eq!(
            nomap("--userns", 65537).unwrap(),
            [IdMapping {
                container_id: 0,
                host_id: 1,
                size: 65536
            }]
        );
        assert!(nomap("--userns", 1).is_err());
        assert_eq!(
            parse(Some("keep-id"), &[], &[], true).unwrap(),
            Request::KeepId {
                uid: None,
                gid: None
            }
        );
        assert_eq!(
            parse(Some("keep-id:uid=200,gid=210"), &[], &[], true).unwrap(),
            Request::KeepId {
                uid: Some(200),
                gid: Some(210)
            }
        );
        assert!(parse(Some("keep-id:size=3"), &[], &[], true).is_err());
        let m = parse(None, &["0:100000:65536".into()], &[], false).unwrap();
        let one = IdMapping {
            container_id: 0,
            host_id: 100000,
            size: 65536,
        };
        assert_eq!(
            m,
            Request::Maps {
                uid: vec![one],
                gid: vec![one]
            }
        );
        assert!(parse(Some("auto"), &["0:1:1".into()], &[], false).is_err());
        assert!(parse_maps("--uidmap", &["0:100000:10".into(), "5:200000:10".into()]).is_err());
        assert!(parse_maps("--uidmap", &["1:100000:10".into()]).is_err());
        assert!(parse_maps("--uidmap", &["0:x:10".into()]).is_err());
        assert_eq!(parse_maps("--uidmap", &["0:7".into()]).unwrap()[0].size, 1);
    }

    #[test]
    fn auto_options_in_podmans_words() {
        let m = |c, h, n| IdMapping {
            container_id: c,
            host_id: h,
            size: n,
        };
        assert_eq!(
            parse(
                Some("auto:uidmapping=0:5000:1,uidmapping=1000:6000:2,gidmapping=0:7000:1,size=10"),
                &[],
                &[],
                false
            )
            .unwrap(),
            Request::Auto {
                size: 10,
                uid: vec![m(0, 5000, 1), m(1000, 6000, 2)],
                gid: vec![m(0, 7000, 1)]
            }
        );
        for (bad, words) in [
            (
                "auto:uidmapping=bad",
                "UID setting is malformed expected [\"uint32:uint32:uint32\"]",
            ),
            ("auto:gidmapping=0:1", "GID setting is malformed"),
            ("auto:uidmapping=0:1:2:3", "malformed"),
            ("auto:uidmapping=0:1:0", "malformed"),
            (
                "auto:uidmapping",
                "invalid option specified: \"uidmapping\"",
            ),
            ("auto:foo=1", "unknown option specified: \"foo\""),
            ("auto:size=x", "invalid size"),
            ("auto:uidmapping=0:5000:10,uidmapping=5:9000:1", "overlap"),
            ("auto:uidmapping=4294967295:1:2", "below 2^32"),
        ] {
            let e = parse(Some(bad), &[], &[], false).unwrap_err().to_string();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }

    #[test]
    fn auto_maps_leave_the_forced_container_ids_to_them() {
        let m = |c, h, n| IdMapping {
            container_id: c,
            host_id: h,
            size: n,
        };
        let pool = Ranges {
            uids: vec![(100000, 1000)],
            gids: vec![(200000, 1000)],
        };
        // No forced mapping: one range from 0.
        assert_eq!(
            auto_maps(&pool, &Ranges::default(), 10, (&[], &[]), false).unwrap(),
            (vec![m(0, 100000, 10)], vec![m(0, 200000, 10)])
        );
        // uid 5 forced to host 5000, gid 0 to the pool's first id: the
        // auto range skips the container's 5 and the host's 200000.
        let (u, g) = auto_maps(
            &pool,
            &Ranges::default(),
            10,
            (&[m(5, 5000, 1)], &[m(0, 200000, 1)]),
            false,
        )
        .unwrap();
        assert_eq!(u, vec![m(0, 100000, 5), m(6, 100005, 4), m(5, 5000, 1)]);
        assert_eq!(g, vec![m(1, 200001, 9), m(0, 200000, 1)]);
        // Forced mappings above the size add to it; taken ranges are skipped.
        let taken = Ranges {
            uids: vec![(100000, 10)],
            gids: vec![],
        };
        let (u, _) = auto_maps(&pool, &taken, 10, (&[m(70000, 1, 1)], &[]), false).unwrap();
        assert_eq!(u, vec![m(0, 100010, 10), m(70000, 1, 1)]);
        // Everything forced: no auto range at all.
        let (u, _) =
            auto_maps(&pool, &Ranges::default(), 10, (&[m(0, 1, 10)], &[]), false).unwrap();
        assert_eq!(u, vec![m(0, 1, 10)]);
        assert!(
            auto_maps(&pool, &Ranges::default(), 2000, (&[], &[]), false)
                .unwrap_err()
                .contains("no free range of 2000 uids")
        );
    }

    #[test]
    fn rootless_maps_stay_inside_the_namespace_and_auto_says_why_not() {
        let m = |h, n| IdMapping {
            container_id: 0,
            host_id: h,
            size: n,
        };
        assert!(check_inside("--uidmap", &[m(1, 1000)], 65537).is_ok());
        assert!(check_inside("--uidmap", &[m(1, 65536)], 65537).is_ok());
        let e = check_inside("--uidmap", &[m(100000, 10)], 65537).unwrap_err();
        assert!(e.to_string().contains("0 is you, 1..65536"), "{e}");
        let pool = Ranges {
            uids: vec![(1, 65536)],
            gids: vec![(1, 65536)],
        };
        assert_eq!(allocate(&pool, &Ranges::default(), 1000, true), Ok((1, 1)));
        let held = Ranges {
            uids: vec![(1, 65000)],
            gids: vec![(1, 65000)],
        };
        assert!(allocate(&pool, &held, 1000, true)
            .unwrap_err()
            .contains("other containers hold the rest"));
        assert!(allocate(&pool, &Ranges::default(), 70000, true)
            .unwrap_err()
            .contains("has 65536 uids to give"));
    }

    #[test]
    fn subordinate_files_and_first_fit() {
        let text = "alice:100000:65536\ncontainers:200000:200000\ncontainers:1000000:65536\n";
        let r = subordinate_ranges(text, "containers");
        assert_eq!(r, vec![(200000, 200000), (1000000, 65536)]);
        assert_eq!(first_fit(&r, &[], 65536), Some(200000));
        assert_eq!(first_fit(&r, &[(200000, 65536)], 65536), Some(265536));
        // The first range is full for this size: the next one.
        assert_eq!(
            first_fit(
                &r,
                &[(200000, 65536), (265536, 65536), (331072, 65536)],
                65536
            ),
            Some(1000000)
        );
        // A hole between two taken ranges is used.
        assert_eq!(
            first_fit(&r, &[(265536, 65536), (200000, 1000)], 1000),
            Some(201000)
        );
        assert_eq!(
            first_fit(&r, &[(200000, 200000), (1000000, 1)], 65536),
            None
        );
    }
}
