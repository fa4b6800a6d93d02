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

/// What the create asked for, before an `auto` range is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The host's user namespace (`host`, or nothing given).
    Host,
    /// A range of `size` ids of the auto user's.
    Auto {
        /// How many ids.
        size: u32,
    },
    /// podman's `keep-id[:uid=N,gid=N]` (rootless only): the user's ids
    /// are the same inside (or `uid`/`gid`).
    KeepId {
        /// `uid=N`.
        uid: Option<u32>,
        /// `gid=N`.
        gid: Option<u32>,
    },
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
        "auto" => {
            let mut size = AUTO_SIZE;
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                match o.split_once('=') {
                    Some(("size", n)) => {
                        size = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                            bad("--userns", format!("auto: invalid size {n:?}: a positive number of ids"))
                        })?
                    }
                    _ => {
                        return Err(bad(
                            "--userns",
                            format!("auto: option {o:?} is not supported (berth takes size=N)"),
                        ))
                    }
                }
            }
            Ok(Request::Auto { size })
        }
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
        // podman's own words for these as root.
        "keep-id" => Err(bad(
            "--userns",
            "keep-id is only supported in rootless mode (berth runs as root here; use --userns=auto or --uidmap)",
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
            format!("{mode:?} is not supported: use host, auto[:size=N], or --uidmap/--gidmap"),
        )),
    }
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
    let overlaps = |a: u32, n: u32, b: u32, k: u32| a < b + k && b < a + n;
    for (i, a) in out.iter().enumerate() {
        for b in &out[i + 1..] {
            if overlaps(a.container_id, a.size, b.container_id, b.size)
                || overlaps(a.host_id, a.size, b.host_id, b.size)
            {
                return Err(bad(
                    flag,
                    format!(
                        "mappings {}:{}:{} and {}:{}:{} overlap",
                        a.container_id, a.host_id, a.size, b.container_id, b.host_id, b.size
                    ),
                ));
            }
        }
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
    for c in configs {
        let Some(u) = c.get("userns") else { continue };
        let Ok(u) = serde_json::from_value::<UserNs>(u.clone()) else {
            continue;
        };
        uids.extend(u.uid_map.iter().map(|m| (m.host_id, m.size)));
        gids.extend(u.gid_map.iter().map(|m| (m.host_id, m.size)));
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

/// Choose an `auto` range of `size` ids among `pool` outside `taken`
/// (`rootless`: the pool is berth's user namespace, which the error
/// names).
pub fn allocate(
    pool: &Ranges,
    taken: &Ranges,
    size: u32,
    rootless: bool,
) -> std::result::Result<(u32, u32), String> {
    let none = |what: &str| {
        let has: u64 = match what {
            "uid" => &pool.uids,
            _ => &pool.gids,
        }
        .iter()
        .map(|(_, n)| u64::from(*n))
        .sum();
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
    };
    let uid = first_fit(&pool.uids, &taken.uids, size).ok_or_else(|| none("uid"))?;
    let gid = first_fit(&pool.gids, &taken.gids, size).ok_or_else(|| none("gid"))?;
    Ok((uid, gid))
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
            Request::Auto { size: AUTO_SIZE }
        );
        assert_eq!(
            parse(Some("auto:size=1024"), &[], &[], false).unwrap(),
            Request::Auto { size: 1024 }
        );
        assert!(parse(Some("auto:size=0"), &[], &[], false).is_err());
        assert!(parse(Some("keep-id"), &[], &[], false)
            .unwrap_err()
            .to_string()
            .contains("only supported in rootless mode"));
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
