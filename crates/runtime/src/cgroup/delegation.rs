//! A delegated cgroup v2 subtree for rootless berth: where systemd's
//! `user@UID.service` (or anything else) gave the user a part of the
//! unified hierarchy, each rootless container gets a cgroup there, so its
//! limits, usage and freezer work as rootful ones do.
//!
//! A subtree is delegated when its directory and its `cgroup.procs` and
//! `cgroup.subtree_control` belong to the user (what systemd's
//! `Delegate=yes` chowns) and its `cgroup.controllers` lists controllers.
//! The *highest* such ancestor of the process's own cgroup (from
//! `/proc/self/cgroup`) is chosen: systemd's delegated `user@UID.service`
//! holds no processes itself (they live in `init.scope`, `app.slice`…),
//! so controllers can be enabled in its `cgroup.subtree_control` (cgroup
//! v2's no-internal-process rule forbids that in a cgroup with processes).
//! Containers then live in `<subtree>/berth/<id>`; [`Delegation::hierarchy`]
//! makes the subtree the root of a [`Hierarchy::V2`], so every cgroup
//! operation (create with limits, stats, freeze, kill, destroy) works
//! below it unchanged.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Hierarchy;

/// The controllers berth uses, in the order it enables them.
pub const WANTED: &[&str] = &["cpu", "memory", "pids", "cpuset", "io"];

/// A delegated subtree of the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The subtree's directory (below the cgroup2 mount).
    pub dir: PathBuf,
    /// The controllers berth can use there (listed in its
    /// `cgroup.controllers`), in [`WANTED`]'s order.
    pub controllers: Vec<String>,
}

/// Why no delegated subtree can be used; each says what is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotDelegated {
    /// cgroup v1 controllers are mounted (v1 or hybrid).
    #[error("the host uses cgroup v1")]
    V1,
    /// No `0::/path` line in /proc/self/cgroup.
    #[error("the process has no cgroup v2 path")]
    NoPath,
    /// No ancestor of the process's cgroup belongs to the user.
    #[error("no cgroup of the user's is delegated ({own} and its parents are not the user's; systemd's user@.service with Delegate=yes gives one)")]
    NotOwned {
        /// The process's cgroup.
        own: String,
    },
    /// The user's subtree is the process's own cgroup, which has processes
    /// (controllers cannot be enabled below it).
    #[error("the user's delegated cgroup {0} holds berth's own process: controllers cannot be enabled below it")]
    Occupied(String),
    /// The subtree has none of the controllers berth uses.
    #[error("the delegated cgroup {0} has no memory, pids or cpu controller (cgroup.controllers is empty)")]
    NoControllers(String),
}

/// The process's unified-hierarchy path from `/proc/self/cgroup` text.
pub fn own_path(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim)
}

fn owned(p: &Path, uid: u32) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.uid() == uid)
}

/// Find the delegated subtree of the user `uid` (the uid the files show
/// to this process: 0 inside rootless berth's namespace, where the user is
/// 0) in the cgroup2 mount `mount`, for a process whose
/// `/proc/self/cgroup` says `proc_self_cgroup`.
pub fn find(mount: &Path, proc_self_cgroup: &str, uid: u32) -> Result<Delegation, NotDelegated> {
    let own = own_path(proc_self_cgroup).ok_or(NotDelegated::NoPath)?;
    let parts: Vec<&str> = own.split('/').filter(|p| !p.is_empty()).collect();
    // The highest ancestor (the process's own cgroup included) that is the
    // user's.
    let mut chosen = None;
    for depth in 1..=parts.len() {
        let dir = parts[..depth]
            .iter()
            .fold(mount.to_path_buf(), |d, p| d.join(p));
        if owned(&dir, uid)
            && owned(&dir.join("cgroup.procs"), uid)
            && owned(&dir.join("cgroup.subtree_control"), uid)
        {
            chosen = Some((depth, dir));
            break;
        }
    }
    let Some((depth, dir)) = chosen else {
        return Err(NotDelegated::NotOwned {
            own: own.to_string(),
        });
    };
    if depth == parts.len() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            return Err(NotDelegated::Occupied(own.to_string()));
        }
    }
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let controllers: Vec<String> = WANTED
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| c.to_string())
        .collect();
    if !controllers.iter().any(|c| c != "cpuset" && c != "io") {
        return Err(NotDelegated::NoControllers(dir.display().to_string()));
    }
    Ok(Delegation { dir, controllers })
}

/// The delegated subtree of this process's user, if the host is cgroup v2
/// and one is there (reads /proc/self/mountinfo and /proc/self/cgroup).
pub fn detect() -> Result<Delegation, NotDelegated> {
    let mount = match Hierarchy::detect() {
        Ok(Hierarchy::V2 { root }) => root,
        _ => return Err(NotDelegated::V1),
    };
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    find(&mount, &text, nix::unistd::geteuid().as_raw())
}

impl Delegation {
    /// The hierarchy whose root is the subtree: container cgroups
    /// (`berth/<id>`) are made below it, and [`super::Cgroup::create`]
    /// enables the controllers on the subtree's and `berth`'s
    /// `cgroup.subtree_control` as it goes down.
    pub fn hierarchy(&self) -> Hierarchy {
        Hierarchy::V2 {
            root: self.dir.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Cgroup;

    /// A fake cgroup2 mount holding
    /// `user.slice/user-1000.slice/user@1000.service/app.slice/berth.scope`
    /// (the process's cgroup, with a pid in it), each dir with the control
    /// files a cgroupfs dir has.
    struct Fake {
        root: tempfile::TempDir,
    }

    const OWN: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/berth.scope";

    impl Fake {
        fn new(controllers: &str) -> Fake {
            let root = tempfile::tempdir().unwrap();
            let mut dir = root.path().to_path_buf();
            for part in OWN.trim_start_matches('/').split('/') {
                dir.push(part);
                std::fs::create_dir(&dir).unwrap();
                for f in ["cgroup.procs", "cgroup.subtree_control"] {
                    std::fs::write(dir.join(f), "").unwrap();
                }
                std::fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
            }
            std::fs::write(dir.join("cgroup.procs"), "4242\n").unwrap();
            Fake { root }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.root.path().join(rel.trim_start_matches('/'))
        }

        /// Give `rel` and its control files to `uid`, as systemd's
        /// `Delegate=yes` does.
        fn chown(&self, rel: &str, uid: u32) {
            let d = self.path(rel);
            for p in [
                d.clone(),
                d.join("cgroup.procs"),
                d.join("cgroup.subtree_control"),
            ] {
                std::os::unix::fs::chown(&p, Some(uid), None).unwrap();
            }
        }
    }

    /// Every dir another user's (uid 4000000) at first: each test then
    /// gives the delegated part to the user it looks for (chown: root).
    fn setup(controllers: &str) -> Fake {
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root to chown the fake cgroupfs (scripts/test runs it as root)"
        );
        let f = Fake::new(controllers);
        for rel in [
            "/user.slice",
            "/user.slice/user-1000.slice",
            OWN,
            "/user.slice/user-1000.slice/user@1000.service/app.slice",
        ] {
            f.chown(rel, 4_000_000);
        }
        f
    }

    #[test]
    #[ignore = "root: chowns a fake cgroupfs tree"]
    fn the_highest_delegated_ancestor_is_chosen_with_its_controllers() {
        let f = setup("cpuset cpu io memory pids hugetlb\n");
        let text = format!("0::{OWN}\n");
        // Nothing is the user's: not delegated, saying which cgroup.
        let uid = 1_000_000;
        assert!(matches!(
            find(f.root.path(), &text, uid),
            Err(NotDelegated::NotOwned { .. })
        ));
        // systemd's delegation: user@1000.service and below are the user's.
        let service = "/user.slice/user-1000.slice/user@1000.service";
        f.chown(service, uid);
        f.chown(&format!("{service}/app.slice"), uid);
        f.chown(OWN, uid);
        let d = find(f.root.path(), &text, uid).unwrap();
        assert_eq!(d.dir, f.path(service));
        assert_eq!(d.controllers, ["cpu", "memory", "pids", "cpuset", "io"]);
        // A v1 line or none at all: no path.
        assert_eq!(
            find(f.root.path(), "1:name=systemd:/x\n", uid),
            Err(NotDelegated::NoPath)
        );
    }

    #[test]
    #[ignore = "root: chowns a fake cgroupfs tree"]
    fn an_occupied_or_controllerless_subtree_is_refused() {
        let uid = 1_000_000;
        let text = format!("0::{OWN}\n");
        // Only the process's own scope is the user's, and it has a process.
        let f = setup("cpu memory pids\n");
        f.chown(OWN, uid);
        assert_eq!(
            find(f.root.path(), &text, uid),
            Err(NotDelegated::Occupied(OWN.to_string()))
        );
        // Delegated, but no controllers were given along (this host's v2
        // mount: cgroup.controllers empty).
        let f = setup("\n");
        let service = "/user.slice/user-1000.slice/user@1000.service";
        f.chown(service, uid);
        assert!(matches!(
            find(f.root.path(), &text, uid),
            Err(NotDelegated::NoControllers(_))
        ));
    }

    #[test]
    #[ignore = "root: chowns a fake cgroupfs tree"]
    fn containers_get_cgroups_with_limits_below_the_subtree() {
        let uid = 1_000_000;
        let f = setup("cpu memory pids\n");
        let service = "/user.slice/user-1000.slice/user@1000.service";
        f.chown(service, uid);
        let d = find(f.root.path(), &format!("0::{OWN}\n"), uid).unwrap();
        let res: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864},
            "cpu": {"quota": 50000, "period": 100000},
            "pids": {"limit": 20}
        }))
        .unwrap();
        // The subtree's berth dir gets the controllers too once it exists
        // (the kernel fills cgroup.controllers of a new cgroup; here the
        // test does, as the kernel would from the parent's subtree_control).
        let cg = Cgroup::create(&d.hierarchy(), "/berth/c1", &res).unwrap();
        let base = f.path(service);
        let r = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(r(base.join("cgroup.subtree_control")), "+cpu +memory +pids");
        let leaf = base.join("berth/c1");
        assert_eq!(r(leaf.join("memory.max")), "67108864");
        assert_eq!(r(leaf.join("cpu.max")), "50000 100000");
        assert_eq!(r(leaf.join("pids.max")), "20");
        // Nothing above the subtree was written.
        for above in ["user.slice", "user.slice/user-1000.slice"] {
            assert_eq!(r(f.path(above).join("cgroup.subtree_control")), "");
        }
        assert_eq!(
            std::fs::read_to_string(f.root.path().join("cgroup.subtree_control")).ok(),
            None
        );
        // pause: cgroup.freeze.
        std::fs::write(leaf.join("cgroup.freeze"), "0").unwrap();
        cg.freeze().unwrap();
        assert_eq!(r(leaf.join("cgroup.freeze")), "1");
    }
}
