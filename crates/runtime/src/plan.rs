//! The OCI spec, parsed once into the concrete steps the start path runs.
//!
//! Everything that can fail for a bad spec fails here, in the parent,
//! before any process is created; the child only executes the plan.
use std::ffi::CString;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::RuntimeError;

/// What kind of filesystem a mount is, as the start path handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (opened before pivot_root).
    Bind {
        /// The host path.
        source: PathBuf,
        /// `rbind`.
        recursive: bool,
        /// `idmap`: in a user namespace, shown with the container's id
        /// mapping (host root's files are the container root's).
        idmap: bool,
    },
    /// The container's view of the cgroup hierarchy.
    Cgroup,
    /// Any other filesystem type (proc, tmpfs, devpts, mqueue, sysfs...).
    Fs {
        /// The filesystem type.
        fstype: String,
        /// The mount source (`proc`, `tmpfs`...).
        source: String,
    },
}

/// One mount inside the container, done after pivot_root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Absolute path inside the container.
    pub dest: PathBuf,
    /// What to mount.
    pub kind: MountKind,
    /// Mount flags from the options.
    pub flags: MsFlags,
    /// Propagation flags (`rprivate`, `rslave`...), applied after mounting.
    pub propagation: MsFlags,
    /// Filesystem-specific options (`mode=755,size=65536k`).
    pub data: String,
}

/// A device node to create in the container's /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStep {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// `c`, `b`, `p`.
    pub kind: char,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The capability sets to apply, as bit masks (bit n = capability n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Ambient set.
    pub ambient: u64,
}

/// One line of a user namespace's id map: `size` ids from `container`
/// inside are `host` and up outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the namespace.
    pub container: u32,
    /// The host id it is.
    pub host: u32,
    /// How many ids.
    pub size: u32,
}

/// A user namespace's uid and gid maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    /// `uid_map` lines.
    pub uid: Vec<IdRange>,
    /// `gid_map` lines.
    pub gid: Vec<IdRange>,
}

fn host_of(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

impl IdMaps {
    /// The host uid of the container's uid `id`, if mapped.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        host_of(&self.uid, id)
    }
    /// The host gid of the container's gid `id`, if mapped.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        host_of(&self.gid, id)
    }
    /// The host uid of the container's root (checked mapped by the plan).
    pub fn host_root_uid(&self) -> u32 {
        self.host_uid(0).unwrap_or(u32::MAX)
    }
    /// The host gid of the container's root group.
    pub fn host_root_gid(&self) -> u32 {
        self.host_gid(0).unwrap_or(u32::MAX)
    }
}

/// Every step of starting a container, decided before forking.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    /// `CLONE_NEW*` flags for the clone (pid, mount, uts, ipc, net).
    pub clone_flags: CloneFlags,
    /// A new user namespace with these maps (`CLONE_NEWUSER` is not in
    /// `clone_flags`: the start path adds it, see [`crate::userns`]).
    pub userns: Option<IdMaps>,
    /// The user namespace to join (`userns` holds its maps, which it
    /// must have) instead of making one.
    pub userns_join: Option<PathBuf>,
    /// Namespaces to join by path instead of creating.
    pub join: Vec<(PathBuf, CloneFlags)>,
    /// A pid namespace to join: the parent enters it for the fork (a
    /// process's own pid namespace never changes; only its children's).
    pub pid_join: Option<PathBuf>,
    /// Unshare the cgroup namespace after being put into the cgroup.
    pub new_cgroupns: bool,
    /// Where the root filesystem is mounted (spec `root.path`).
    pub rootfs: PathBuf,
    /// Remount the root read-only at the end.
    pub readonly_root: bool,
    /// Mounts, in order, inside the new root.
    pub mounts: Vec<MountStep>,
    /// Device nodes for /dev.
    pub devices: Vec<DeviceStep>,
    /// Paths hidden from the container.
    pub masked: Vec<PathBuf>,
    /// Paths made read-only.
    pub readonly: Vec<PathBuf>,
    /// Hostname for the new UTS namespace.
    pub hostname: Option<String>,
    /// sysctls to write under /proc/sys.
    pub sysctls: Vec<(String, String)>,
    /// rlimits: (resource, soft, hard).
    pub rlimits: Vec<(nix::sys::resource::Resource, u64, u64)>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// umask for the process.
    pub umask: u32,
    /// Capabilities.
    pub caps: CapSets,
    /// `no_new_privs`.
    pub no_new_privs: bool,
    /// argv.
    pub args: Vec<CString>,
    /// envp.
    pub env: Vec<CString>,
    /// `PATH` from the env, used to find argv[0].
    pub path_var: String,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    /// The process gets a controlling terminal (stdio is a pty slave).
    pub terminal: bool,
    /// The terminal's initial size (rows, columns), OCI `consoleSize`.
    pub console_size: Option<(u16, u16)>,
    /// oom_score_adj for the init.
    pub oom_score_adj: Option<i32>,
    /// The container's cgroup path below each hierarchy root (`/berth/<id>`).
    pub cgroups_path: Option<PathBuf>,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn invalid(field: &'static str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidSpec {
        field,
        reason: reason.into(),
    }
}

/// A container path must be absolute and free of `..`.
pub fn clean_container_path(field: &'static str, p: &Path) -> Result<PathBuf, RuntimeError> {
    if !p.is_absolute() {
        return Err(invalid(
            field,
            format!("{} is not an absolute path", p.display()),
        ));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(invalid(field, format!("{} contains \"..\"", p.display())));
            }
            Component::Prefix(_) => return Err(invalid(field, "unsupported path prefix")),
        }
    }
    Ok(out)
}

/// Split OCI mount options into mount flags, propagation flags and data.
pub fn parse_mount_options(options: &[String]) -> (MsFlags, MsFlags, String, bool) {
    let mut flags = MsFlags::empty();
    let mut prop = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    let mut bind = false;
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "suid" => flags &= !MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "dev" => flags &= !MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags &= !MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "async" => flags &= !MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "remount" => flags |= MsFlags::MS_REMOUNT,
            "mand" => flags |= MsFlags::MS_MANDLOCK,
            "nomand" => flags &= !MsFlags::MS_MANDLOCK,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "atime" => flags &= !MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "diratime" => flags &= !MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "norelatime" => flags &= !MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "nostrictatime" => flags &= !MsFlags::MS_STRICTATIME,
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= MsFlags::MS_REC;
            }
            "private" => prop |= MsFlags::MS_PRIVATE,
            "rprivate" => prop |= MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "shared" => prop |= MsFlags::MS_SHARED,
            "rshared" => prop |= MsFlags::MS_SHARED | MsFlags::MS_REC,
            "slave" => prop |= MsFlags::MS_SLAVE,
            "rslave" => prop |= MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "unbindable" => prop |= MsFlags::MS_UNBINDABLE,
            "runbindable" => prop |= MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    (flags, prop, data.join(","), bind)
}

fn cap_mask(set: Option<&oci_spec::runtime::Capabilities>) -> u64 {
    let Some(set) = set else { return 0 };
    let mut mask = 0u64;
    for c in set {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if let Ok(model::capability::CapArg::One(bit)) = model::capability::parse(&name) {
            mask |= 1u64 << bit;
        }
    }
    mask
}

fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    use oci_spec::runtime::PosixRlimitType as T;
    Some(match t {
        T::RlimitCpu => R::RLIMIT_CPU,
        T::RlimitFsize => R::RLIMIT_FSIZE,
        T::RlimitData => R::RLIMIT_DATA,
        T::RlimitStack => R::RLIMIT_STACK,
        T::RlimitCore => R::RLIMIT_CORE,
        T::RlimitRss => R::RLIMIT_RSS,
        T::RlimitNproc => R::RLIMIT_NPROC,
        T::RlimitNofile => R::RLIMIT_NOFILE,
        T::RlimitMemlock => R::RLIMIT_MEMLOCK,
        T::RlimitAs => R::RLIMIT_AS,
        T::RlimitLocks => R::RLIMIT_LOCKS,
        T::RlimitSigpending => R::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        T::RlimitNice => R::RLIMIT_NICE,
        T::RlimitRtprio => R::RLIMIT_RTPRIO,
        T::RlimitRttime => R::RLIMIT_RTTIME,
    })
}

fn cstring(field: &'static str, s: &str) -> Result<CString, RuntimeError> {
    CString::new(s).map_err(|_| invalid(field, format!("{s:?} contains a NUL byte")))
}

/// The spec's `uidMappings`/`gidMappings` for a new user namespace: both
/// given, each at most 340 lines (the kernel's limit), and mapping the
/// container's root (the start path sets the container up as its root).
fn id_maps(linux: &oci_spec::runtime::Linux) -> Result<IdMaps, RuntimeError> {
    let conv = |field: &'static str,
                m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>|
     -> Result<Vec<IdRange>, RuntimeError> {
        let list: Vec<IdRange> = m
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|r| IdRange {
                container: r.container_id(),
                host: r.host_id(),
                size: r.size(),
            })
            .collect();
        if list.is_empty() {
            return Err(invalid(field, "a new user namespace needs an id map"));
        }
        if list.len() > 340 {
            return Err(invalid(field, "at most 340 ranges"));
        }
        if host_of(&list, 0).is_none() {
            return Err(invalid(
                field,
                "the container's id 0 is not mapped (berth sets the container up as its root)",
            ));
        }
        Ok(list)
    };
    Ok(IdMaps {
        uid: conv("linux.uidMappings", linux.uid_mappings())?,
        gid: conv("linux.gidMappings", linux.gid_mappings())?,
    })
}

impl ChildPlan {
    /// Parse `spec` into a plan.
    pub fn from_spec(spec: &Spec) -> Result<ChildPlan, RuntimeError> {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("process", "missing"))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| invalid("root", "missing"))?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| invalid("linux", "missing"))?;

        let mut clone_flags = CloneFlags::empty();
        let mut join = Vec::new();
        let mut pid_join = None;
        let mut new_cgroupns = false;
        let mut userns = None;
        let mut userns_join = None;
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let flag = match ns.typ() {
                LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
                LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
                LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
                LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
                LinuxNamespaceType::User => {
                    userns = Some(id_maps(linux)?);
                    userns_join = ns.path().clone();
                    continue;
                }
                other => {
                    return Err(invalid(
                        "linux.namespaces",
                        format!("{other:?} namespaces are not supported by the built-in runtime"),
                    ))
                }
            };
            match ns.path() {
                Some(p) if flag == CloneFlags::CLONE_NEWPID => pid_join = Some(p.clone()),
                Some(p) if flag == CloneFlags::CLONE_NEWNS => {
                    return Err(invalid(
                        "linux.namespaces",
                        format!(
                            "joining an existing {flag:?} namespace ({}) is not supported",
                            p.display()
                        ),
                    ))
                }
                Some(p) => join.push((p.clone(), flag)),
                None if flag == CloneFlags::CLONE_NEWCGROUP => new_cgroupns = true,
                None => clone_flags |= flag,
            }
        }
        if !clone_flags.contains(CloneFlags::CLONE_NEWNS) {
            return Err(invalid(
                "linux.namespaces",
                "the built-in runtime needs a mount namespace",
            ));
        }

        let mut mounts = Vec::new();
        for m in spec.mounts().as_deref().unwrap_or_default() {
            let dest = clean_container_path("mounts.destination", m.destination())?;
            let all = m.options().as_deref().unwrap_or_default();
            let idmap = all.iter().any(|o| o == "idmap");
            let options: Vec<String> = all.iter().filter(|o| *o != "idmap").cloned().collect();
            let (flags, propagation, data, bind) = parse_mount_options(&options);
            let typ = m.typ().clone().unwrap_or_default();
            let kind = if bind || typ == "bind" {
                let source = m.source().clone().ok_or_else(|| {
                    invalid(
                        "mounts.source",
                        format!("bind mount on {} has no source", dest.display()),
                    )
                })?;
                if !source.is_absolute() {
                    return Err(invalid(
                        "mounts.source",
                        format!("{} is not absolute", source.display()),
                    ));
                }
                MountKind::Bind {
                    source,
                    recursive: flags.contains(MsFlags::MS_REC),
                    idmap: idmap && userns.is_some(),
                }
            } else if typ == "cgroup" || typ == "cgroup2" {
                MountKind::Cgroup
            } else if typ.is_empty() {
                return Err(invalid(
                    "mounts.type",
                    format!("mount on {} has no type", dest.display()),
                ));
            } else {
                MountKind::Fs {
                    source: m
                        .source()
                        .as_ref()
                        .map(|s| s.display().to_string())
                        .unwrap_or_else(|| typ.clone()),
                    fstype: typ,
                }
            };
            mounts.push(MountStep {
                dest,
                kind,
                flags: flags & !MsFlags::MS_REC,
                propagation,
                data,
            });
        }

        let mut devices = Vec::new();
        for d in linux.devices().as_deref().unwrap_or_default() {
            let kind = match d.typ() {
                oci_spec::runtime::LinuxDeviceType::C | oci_spec::runtime::LinuxDeviceType::U => {
                    'c'
                }
                oci_spec::runtime::LinuxDeviceType::B => 'b',
                oci_spec::runtime::LinuxDeviceType::P => 'p',
                oci_spec::runtime::LinuxDeviceType::A => {
                    return Err(invalid(
                        "linux.devices",
                        "type a is only valid in cgroup rules",
                    ))
                }
            };
            devices.push(DeviceStep {
                path: clean_container_path("linux.devices.path", d.path())?,
                kind,
                major: d.major() as u64,
                minor: d.minor() as u64,
                mode: d.file_mode().unwrap_or(0o666),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            });
        }

        let masked = linux
            .masked_paths()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| clean_container_path("linux.maskedPaths", Path::new(p)))
            .collect::<Result<Vec<_>, _>>()?;
        let readonly = linux
            .readonly_paths()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| clean_container_path("linux.readonlyPaths", Path::new(p)))
            .collect::<Result<Vec<_>, _>>()?;
        let sysctls = linux
            .sysctl()
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        if k.contains('/') || k.contains("..") {
                            Err(invalid("linux.sysctl", format!("bad sysctl name {k:?}")))
                        } else {
                            Ok((k.clone(), v.clone()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        // As runc: a hostname or a UTS/network sysctl needs a namespace of
        // the container's own, or it would change the host's.
        let has_ns =
            |flag: CloneFlags| clone_flags.contains(flag) || join.iter().any(|(_, f)| *f == flag);
        let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
        if hostname.is_some() && !has_ns(CloneFlags::CLONE_NEWUTS) {
            return Err(invalid(
                "hostname",
                "unable to set hostname without a private UTS namespace",
            ));
        }
        for (k, _) in &sysctls {
            let needs = if k == "kernel.hostname" || k == "kernel.domainname" {
                Some(CloneFlags::CLONE_NEWUTS)
            } else if k.starts_with("net.") {
                Some(CloneFlags::CLONE_NEWNET)
            } else {
                None
            };
            if needs.is_some_and(|f| !has_ns(f)) {
                return Err(invalid(
                    "linux.sysctl",
                    format!("sysctl {k:?} is not in a separate kernel namespace"),
                ));
            }
        }

        let mut rlimits = Vec::new();
        for r in process.rlimits().as_deref().unwrap_or_default() {
            if let Some(res) = rlimit_resource(r.typ()) {
                rlimits.push((res, r.soft(), r.hard()));
            }
        }

        let args: Vec<CString> = process
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| cstring("process.args", a))
            .collect::<Result<_, _>>()?;
        if args.is_empty() {
            return Err(invalid("process.args", "no command given"));
        }
        let env_strings = process.env().as_deref().unwrap_or_default();
        let env: Vec<CString> = env_strings
            .iter()
            .map(|e| cstring("process.env", e))
            .collect::<Result<_, _>>()?;
        let path_var = env_strings
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_string();

        let caps = process
            .capabilities()
            .as_ref()
            .map(|c| CapSets {
                bounding: cap_mask(c.bounding().as_ref()),
                effective: cap_mask(c.effective().as_ref()),
                permitted: cap_mask(c.permitted().as_ref()),
                inheritable: cap_mask(c.inheritable().as_ref()),
                ambient: cap_mask(c.ambient().as_ref()),
            })
            .unwrap_or_default();

        let user = process.user();
        let cwd = if process.cwd().as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            clean_container_path("process.cwd", process.cwd())?
        };
        Ok(ChildPlan {
            clone_flags,
            userns,
            userns_join,
            join,
            pid_join,
            new_cgroupns,
            rootfs: root.path().clone(),
            readonly_root: root.readonly().unwrap_or(false),
            mounts,
            devices,
            masked,
            readonly,
            hostname,
            sysctls,
            rlimits,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask().unwrap_or(0o022),
            caps,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            args,
            env,
            path_var,
            cwd,
            terminal: process.terminal().unwrap_or(false),
            console_size: process.console_size().as_ref().map(|b| {
                (
                    u16::try_from(b.height()).unwrap_or(u16::MAX),
                    u16::try_from(b.width()).unwrap_or(u16::MAX),
                )
            }),
            oom_score_adj: process.oom_score_adj(),
            cgroups_path: linux.cgroups_path().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_mount_options() {
        let opts: Vec<String> = [
            "nosuid",
            "noexec",
            "mode=755",
            "size=65536k",
            "rprivate",
            "ro",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (flags, prop, data, bind) = parse_mount_options(&opts);
        assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY));
        assert_eq!(prop, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(data, "mode=755,size=65536k");
        assert!(!bind);
        let (flags, _, _, bind) = parse_mount_options(&["rbind".to_string()]);
        assert!(bind && flags.contains(MsFlags::MS_REC));
    }

    #[test]
    fn rejects_relative_and_dotdot_paths() {
        assert!(clean_container_path("x", Path::new("etc")).is_err());
        assert!(clean_container_path("x", Path::new("/a/../../etc")).is_err());
        assert_eq!(
            clean_container_path("x", Path::new("/a/./b/")).unwrap(),
            PathBuf::from("/a/b")
        );
    }

    fn spec_with(linux: serde_json::Value, mounts: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/tmp/rootfs"},
            "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": mounts,
            "linux": linux,
        }))
        .unwrap()
    }

    #[test]
    fn user_namespace_maps_and_idmap_option() {
        let bind = serde_json::json!([{"destination": "/v", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]}]);
        let ns = serde_json::json!([{"type": "mount"}, {"type": "user"}]);
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let p = ChildPlan::from_spec(&spec_with(
            serde_json::json!({"namespaces": ns, "uidMappings": map, "gidMappings": map}),
            bind.clone(),
        ))
        .unwrap();
        let maps = p.userns.as_ref().unwrap();
        assert_eq!(
            (maps.host_root_uid(), maps.host_uid(1000)),
            (100000, Some(101000))
        );
        assert_eq!(maps.host_uid(65536), None);
        assert!(matches!(
            &p.mounts[0].kind,
            MountKind::Bind {
                idmap: true,
                recursive: true,
                ..
            }
        ));
        // `idmap` is not passed on as mount data.
        assert_eq!(p.mounts[0].data, "");
        // Without a user namespace the option means nothing.
        let p = ChildPlan::from_spec(&spec_with(
            serde_json::json!({"namespaces": [{"type": "mount"}]}),
            bind,
        ))
        .unwrap();
        assert!(matches!(
            &p.mounts[0].kind,
            MountKind::Bind { idmap: false, .. }
        ));
        // The container's root must be mapped; maps must be given.
        let one = serde_json::json!([{"containerID": 1, "hostID": 100000, "size": 10}]);
        for (u, g) in [
            (one.clone(), map.clone()),
            (map.clone(), serde_json::json!([])),
        ] {
            let err = ChildPlan::from_spec(&spec_with(
                serde_json::json!({"namespaces": ns, "uidMappings": u, "gidMappings": g}),
                serde_json::json!([]),
            ))
            .unwrap_err();
            assert!(err.to_string().contains("Mappings"), "{err}");
        }
    }

    #[test]
    fn capability_masks_from_names() {
        let set: oci_spec::runtime::Capabilities = [
            oci_spec::runtime::Capability::Chown,
            oci_spec::runtime::Capability::Kill,
        ]
        .into_iter()
        .collect();
        assert_eq!(cap_mask(Some(&set)), (1 << 0) | (1 << 5));
    }
}
