//! Copied root filesystems: podman's `vfs` storage driver. A container's
//! root is a copy of its image's layers made at create (`<dir>/copy`,
//! bound as the root at start) instead of an overlay over them.
//!
//! It is used where overlayfs cannot be mounted in rootless berth's user
//! namespace (old kernels, a filesystem that refuses: probed once per
//! boot), when asked for (`--storage-driver vfs`, `BERTH_STORAGE_DRIVER`,
//! `[storage] driver = "vfs"`), and for rootless `--userns=keep-id`,
//! whose nested user namespace needs the image's files stored with
//! shifted owners (overlayfs cannot be idmapped, and the layer dirs'
//! filesystem belongs to the host's user namespace, whose root alone may
//! idmap it). The cost: each container takes its image's size on disk and
//! the copy's time at create. `diff`, `commit` (and so a build's RUN steps)
//! walk the copy beside the image's layers (`store::copydiff`, the
//! engine's side in `copydiff`); `export`, `cp`, `start`/`stop` work on
//! the copy.
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// The copy's dir in the container's dir.
pub const DIR: &str = "copy";

/// Written in the container's dir right after its copy is made: entries
/// of the copy changed (ctime) since its mtime are compared with the
/// image by content too (`store::copydiff`).
pub const MADE: &str = "copy-made";

/// Overrides `[storage] driver` (set by the `--storage-driver` flag).
pub const ENV: &str = "BERTH_STORAGE_DRIVER";

/// How containers' root filesystems are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// overlayfs over the shared layer dirs (the default).
    Overlay,
    /// A copy of the layers per container.
    Vfs,
}

impl std::str::FromStr for Driver {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Driver> {
        match s.trim() {
            "overlay" | "overlay2" => Ok(Driver::Overlay),
            "vfs" => Ok(Driver::Vfs),
            other => Err(EngineError::invalid(
                "--storage-driver",
                format!("unknown storage driver {other:?}: berth has overlay and vfs"),
            )),
        }
    }
}

/// `--userns=keep-id` for one container (rootless): the container's ids
/// that are the user's, and the passwd entry it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeepId {
    /// The container's uid that is the user (the user's own by default).
    pub uid: u32,
    /// The container's gid that is the user's group.
    pub gid: u32,
    /// The user's login name.
    pub name: String,
    /// The user's home directory (`$HOME` inside, as podman).
    pub home: String,
}

/// Why a container gets a copy.
enum Why {
    Asked,
    Refused(String),
    KeepId,
    Maps,
}

/// The driver configured: the flag's environment variable, else
/// berth.toml's `[storage] driver`.
pub(crate) fn configured(settings: &crate::settings::Settings) -> Result<Driver> {
    match std::env::var(ENV).ok().filter(|v| !v.is_empty()) {
        Some(v) => v.parse(),
        None => match settings.storage.driver.as_deref() {
            Some(v) => v.parse().map_err(|_| {
                EngineError::invalid(
                    "berth.toml",
                    format!("[storage] driver = {v:?}: berth has overlay and vfs"),
                )
            }),
            None => Ok(Driver::Overlay),
        },
    }
}

impl crate::Engine {
    /// The copy of a container made with one, if it has.
    pub(crate) fn copied_root(&self, id: &model::ContainerId) -> Option<PathBuf> {
        let p = self.store().container_dir(id).join(DIR);
        p.is_dir().then_some(p)
    }

    /// How the owners of the container's copy are stored, if it has one
    /// made through maps of its own ([`shift_of`]): what writes its files
    /// as a tar maps them back.
    pub(crate) fn copy_shift(
        &self,
        c: &crate::container::Container,
    ) -> Option<store::fsops::IdShift> {
        self.copied_root(c.id())
            .and_then(|_| shift_of(&c.config.userns))
    }

    /// Can overlayfs be mounted here (rootless: in the user namespace)?
    /// Probed once in a helper's mount namespace; the answer is kept in
    /// the runroot (gone at reboot, when the kernel may have changed).
    fn overlay_refusal(&self) -> Option<String> {
        let cache = self.paths().runroot.join("overlay-probe");
        if let Ok(text) = std::fs::read_to_string(&cache) {
            return text.strip_prefix("refused: ").map(str::to_string);
        }
        // The probe forks a helper: a threaded process (`berth serve`)
        // leaves it to a single-threaded one (the API server's zygote, see
        // `create_without_fork`) rather than record a refusal that says
        // nothing about overlayfs.
        if sys::process::thread_count().map_or(true, |n| n != 1) {
            return Some("the overlay probe needs a single-threaded process".into());
        }
        let probe = || -> Result<()> {
            let tmp = self.store().tmp_dir("overlay-probe")?;
            let mk = |n: &str| {
                let p = tmp.path().join(n);
                std::fs::create_dir(&p)
                    .map(|()| p)
                    .map_err(|e| EngineError::io("making the overlay probe's dirs", e))
            };
            let view = crate::rootfs::View {
                lower: vec![mk("a")?, mk("b")?],
                upper: Some((mk("upper")?, mk("work")?)),
                copy: None,
            };
            self.in_rootfs(&view, |_| Ok(()))
        };
        let answer = match probe() {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        };
        let text = match &answer {
            None => "ok".to_string(),
            Some(e) => format!("refused: {e}"),
        };
        let _ = std::fs::write(&cache, text);
        answer
    }

    /// Would a create here run the overlay probe (rootless, overlay not
    /// refused by configuration, not probed yet this boot)?
    pub(crate) fn overlay_probe_pending(&self) -> bool {
        crate::rootless::active()
            && !self.paths().runroot.join("overlay-probe").exists()
            && crate::settings::Settings::load(&self.paths().config)
                .ok()
                .and_then(|s| configured(&s).ok())
                .is_some_and(|d| d != Driver::Vfs)
    }

    fn why_copy(&self, shifted: Option<Why>) -> Result<Option<Why>> {
        if shifted.is_some() {
            return Ok(shifted);
        }
        let settings = crate::settings::Settings::load(&self.paths().config)?;
        if configured(&settings)? == Driver::Vfs {
            return Ok(Some(Why::Asked));
        }
        if crate::rootless::active() {
            if let Some(e) = self.overlay_refusal() {
                return Ok(Some(Why::Refused(e)));
            }
        }
        Ok(None)
    }

    /// Make the container's copy in `dir` from `layers` (base first) when
    /// it gets one (see the module's notes), with owners shifted through
    /// the rootless maps of keep-id, `--uidmap`/`--gidmap`,
    /// `--userns=auto` or `nomap` (`shift`) and keep-id's passwd entry.
    /// Says once per state root what a copy costs.
    pub(crate) fn make_copied_root(
        &self,
        dir: &Path,
        layers: &[PathBuf],
        keep_id: Option<&KeepId>,
        shift: Option<&store::fsops::IdShift>,
    ) -> Result<bool> {
        let shifted = if keep_id.is_some() {
            Some(Why::KeepId)
        } else {
            shift.map(|_| Why::Maps)
        };
        let Some(why) = self.why_copy(shifted)? else {
            return Ok(false);
        };
        let noted = self.paths().root.join("vfs-noted");
        let first = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&noted)
            .is_ok();
        if first {
            let reason = match &why {
                Why::Asked => "the vfs storage driver was asked for".to_string(),
                Why::Refused(e) => {
                    format!("overlayfs cannot be mounted in the user namespace here ({e})")
                }
                Why::KeepId => "--userns=keep-id needs the image's files with shifted owners (overlayfs cannot be idmapped in a user namespace)".to_string(),
                Why::Maps => "a rootless container with --uidmap/--gidmap/--userns=auto needs the image's files with shifted owners (overlayfs cannot be idmapped in a user namespace)".to_string(),
            };
            tracing::warn!(
                "{reason}: containers get a copy of their image's layers (the vfs storage driver); each copy takes the image's size on disk and its copy time at create, and diff/commit walk the whole copy"
            );
        }
        let copy = dir.join(DIR);
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir(&copy)?;
            let fd = store::fsops::open_dir(&copy)?;
            let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
            let opts = store::fsops::CopyOptions {
                shift: shift.cloned(),
                ..Default::default()
            };
            store::fsops::flatten(&refs, fd.as_fd(), &opts)?;
            if let Some(k) = keep_id {
                let root = shift.map_or((0, 0), |m| m.to_outer(0, 0));
                add_user(fd.as_fd(), k, root)?;
            }
            std::fs::File::create(dir.join(MADE))?.sync_all()
        })();
        made.map_err(|e| {
            EngineError::io(
                "copying the image's layers into the container's root (vfs)",
                e,
            )
        })?;
        Ok(true)
    }
}

/// podman's keep-id entries: the user in /etc/passwd and its group in
/// /etc/group, unless the image has those ids already. Written through
/// the copy's own /etc (its symlinks resolve inside it); a new file is
/// the container's root's (`owner`: its outer ids).
fn add_user(
    root: std::os::fd::BorrowedFd<'_>,
    k: &KeepId,
    owner: (u32, u32),
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let etc = match store::fsops::dir_in_root(root, Path::new("etc")) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let append = |file: &str, has: &dyn Fn(&str) -> bool, line: String| -> std::io::Result<()> {
        let path = PathBuf::from(format!("/proc/self/fd/{}/{file}", etc.as_raw_fd()));
        let (text, new) = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => (std::fs::read_to_string(&path)?, false),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(e) => return Err(e),
        };
        if text.lines().any(has) {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags_nofollow()
            .open(&path)?;
        if !text.is_empty() && !text.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        f.write_all(line.as_bytes())?;
        if new {
            std::os::unix::fs::fchown(&f, Some(owner.0), Some(owner.1))?;
        }
        Ok(())
    };
    let field = |line: &str, n: usize| line.split(':').nth(n).map(str::to_string);
    let uid = k.uid.to_string();
    let gid = k.gid.to_string();
    append(
        "passwd",
        &|l| field(l, 2).as_deref() == Some(uid.as_str()),
        format!(
            "{0}:*:{1}:{2}:{0}:{3}:/bin/sh\n",
            k.name, k.uid, k.gid, k.home
        ),
    )?;
    append(
        "group",
        &|l| field(l, 2).as_deref() == Some(gid.as_str()),
        format!("{}:x:{}:\n", k.name, k.gid),
    )
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOFOLLOW)
    }
}

/// The size of rootless berth's namespace's id range (`/proc/self/uid_map`
/// or `gid_map`: the user's 0 and its subordinate ids).
pub(crate) fn namespace_size(file: &str) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum::<u64>()
        .min(u64::from(u32::MAX)) as u32
}

/// keep-id's map of the container's ids onto rootless berth's namespace:
/// the container's `own` is the outer 0 (the user), its ids below are
/// the outer ones above them, the rest stay (podman's keep-id).
pub(crate) fn keep_id_map(own: u32, size: u32) -> Result<Vec<crate::config::IdMapping>> {
    if own >= size {
        return Err(EngineError::invalid(
            "--userns",
            format!(
                "keep-id: id {own} is not below the {size} ids rootless berth's namespace has (the user and its subordinate ids): give the user more subordinate ids or pick keep-id:uid=N,gid=N below {size}"
            ),
        ));
    }
    let m = |container_id, host_id, size| crate::config::IdMapping {
        container_id,
        host_id,
        size,
    };
    let mut out = Vec::new();
    if own > 0 {
        out.push(m(0, 1, own));
    }
    out.push(m(own, 0, 1));
    if size > own + 1 {
        out.push(m(own + 1, own + 1, size - own - 1));
    }
    Ok(out)
}

/// The shift a rootless container's copy was made with: its own maps
/// (keep-id's, `--uidmap`'s, `auto`'s, `nomap`'s) nested in berth's
/// namespace; `None` for a container sharing berth's ids, and rootful,
/// where a copy is idmapped like the layers instead.
pub(crate) fn shift_of(userns: &crate::config::UserNs) -> Option<store::fsops::IdShift> {
    (crate::rootless::active() && userns.is_private())
        .then(|| crate::userns::rootless_shift(userns))
}

/// The keep-id of the user berth runs for: its ids (or `uid`/`gid` given
/// as options) and its passwd entry's name and home, with the maps.
pub(crate) fn keep_id_for(
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<(
    KeepId,
    Vec<crate::config::IdMapping>,
    Vec<crate::config::IdMapping>,
)> {
    let host_uid = crate::rootless::host_uid();
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(host_uid))
        .ok()
        .flatten();
    let (name, home, host_gid) = match &user {
        Some(u) => (u.name.clone(), u.dir.display().to_string(), u.gid.as_raw()),
        None => (host_uid.to_string(), "/".to_string(), host_uid),
    };
    let k = KeepId {
        uid: uid.unwrap_or(host_uid),
        gid: gid.unwrap_or(host_gid),
        name,
        home: std::env::var("HOME")
            .ok()
            .filter(|h| h.starts_with('/'))
            .unwrap_or(home),
    };
    let uid_map = keep_id_map(k.uid, namespace_size("/proc/self/uid_map"))?;
    let gid_map = keep_id_map(k.gid, namespace_size("/proc/self/gid_map"))?;
    Ok((k, uid_map, gid_map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_id_maps_the_user_to_the_namespaces_zero() {
        let m = keep_id_map(1000, 65537).unwrap();
        let t: Vec<(u32, u32, u32)> = m
            .iter()
            .map(|r| (r.container_id, r.host_id, r.size))
            .collect();
        assert_eq!(t, [(0, 1, 1000), (1000, 0, 1), (1001, 1001, 64536)]);
        assert_eq!(keep_id_map(0, 10).unwrap().len(), 2);
        assert!(keep_id_map(70000, 65537).is_err());
        // The copy's owners follow the same map, and back.
        let u = crate::config::UserNs {
            mode: "keep-id".into(),
            uid_map: m.clone(),
            gid_map: m,
        };
        let s = crate::userns::rootless_shift(&u);
        assert_eq!(s.to_outer(0, 999), (1, 1000));
        assert_eq!(s.to_outer(1000, 1001), (0, 1001));
        assert_eq!(s.to_container(0, 1), (1000, 0));
    }

    #[test]
    fn drivers_by_name() {
        assert_eq!("vfs".parse::<Driver>().unwrap(), Driver::Vfs);
        assert_eq!("overlay".parse::<Driver>().unwrap(), Driver::Overlay);
        assert!("btrfs".parse::<Driver>().is_err());
    }
}
