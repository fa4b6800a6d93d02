//! Volumes and mounts: `-v`/`--mount` parsing with Docker's rules, named
//! and anonymous volumes (`volume create|ls|inspect|rm|prune|export|
//! import`), filling an empty volume from the image (copy-up), `:U`, and
//! the OCI mounts a container gets at start.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Component, Path, PathBuf};

use chrono::Utc;
use serde_json::{json, Value};

use crate::config::{MountSpec, MountType};
use crate::error::{EngineError, Result};

mod list;

/// A volume as the store keeps it.
pub use store::VolumeRecord;

/// A volume name as Docker allows it.
pub fn valid_volume_name(name: &str) -> bool {
    model::id::valid_container_name(name)
}

fn bad(flag: &str, why: impl Into<String>) -> EngineError {
    EngineError::invalid(flag, why.into())
}

/// Check a mount point: absolute, no `..`, not `/`.
fn check_target(flag: &str, spec: &str, target: &str) -> Result<String> {
    if !target.starts_with('/') {
        return Err(bad(
            flag,
            format!("{spec:?}: the mount point {target:?} must be an absolute path"),
        ));
    }
    if Path::new(target)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(bad(
            flag,
            format!("{spec:?}: the mount point {target:?} must not contain \"..\""),
        ));
    }
    let clean: PathBuf = Path::new(target).components().collect();
    if clean == Path::new("/") {
        return Err(bad(
            flag,
            format!("{spec:?}: invalid mount point \"/\": the root cannot be a mount"),
        ));
    }
    Ok(clean.display().to_string())
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Parse one `-v`/`--volume`: `[source:]target[:options]`.
pub fn parse_volume_flag(spec: &str) -> Result<MountSpec> {
    let flag = "-v";
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => {
            return Err(bad(
                flag,
                format!(
                    "invalid volume specification {spec:?}: expected [source:]target[:options]"
                ),
            ))
        }
    };
    if parts.len() > 1 && source.is_empty() {
        return Err(bad(
            flag,
            format!("invalid volume specification {spec:?}: empty source"),
        ));
    }
    let target = check_target(flag, spec, target)?;
    let mut m = MountSpec {
        target,
        bind_spec: spec.to_string(),
        ..Default::default()
    };
    if source.is_empty() {
        m.kind = MountType::Volume;
        m.anonymous = true;
    } else if source.starts_with('/') {
        m.kind = MountType::Bind;
        m.source = Path::new(source)
            .components()
            .collect::<PathBuf>()
            .display()
            .to_string();
    } else if valid_volume_name(source) {
        m.kind = MountType::Volume;
        m.source = source.to_string();
    } else {
        return Err(bad(
            flag,
            format!("{source:?} includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; if you intended to pass a host directory, use an absolute path"),
        ));
    }
    let mut mode_seen = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if !mode_seen => {
                mode_seen = true;
                m.readonly = o == "ro";
            }
            // SELinux relabeling: no SELinux here, accepted as Docker does
            // on hosts without it.
            "z" | "Z" => {}
            "nocopy" if m.kind == MountType::Volume => m.nocopy = true,
            "copy" if m.kind == MountType::Volume => m.nocopy = false,
            "U" => m.chown = true,
            p if PROPAGATIONS.contains(&p) && m.propagation.is_empty() => {
                m.propagation = p.to_string()
            }
            other => {
                return Err(bad(
                    flag,
                    format!("invalid mode {other:?} in {spec:?}: use ro, rw, z, Z, U, nocopy (volumes) or a propagation (rprivate, rshared, rslave, ...)"),
                ))
            }
        }
    }
    Ok(m)
}

/// What `--mount` asks of a volume it creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewVolume {
    /// `volume-label`.
    pub labels: BTreeMap<String, String>,
    /// `volume-opt`.
    pub options: BTreeMap<String, String>,
}

fn parse_bool(flag: &str, key: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(bad(
            flag,
            format!("invalid value {v:?} for {key}: use true or false"),
        )),
    }
}

/// Parse one `--mount type=...,source=...,target=...`.
pub fn parse_mount_flag(spec: &str) -> Result<(MountSpec, NewVolume)> {
    let flag = "--mount";
    let mut m = MountSpec::default();
    let mut nv = NewVolume::default();
    let mut kind = None;
    let mut target = None;
    let mut source = None;
    let mut keys_for: Vec<(&str, MountType)> = Vec::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (field.trim(), None),
        };
        let value = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| bad(flag, format!("invalid field {field:?}: {k} needs a value")))
        };
        match k {
            "type" => {
                kind = Some(match v {
                    Some("volume") => MountType::Volume,
                    Some("bind") => MountType::Bind,
                    Some("tmpfs") => MountType::Tmpfs,
                    _ => {
                        return Err(bad(
                            flag,
                            format!("invalid type in {spec:?}: use volume, bind or tmpfs"),
                        ))
                    }
                })
            }
            "source" | "src" => source = Some(value(v)?),
            "target" | "destination" | "dst" => target = Some(value(v)?),
            "readonly" | "ro" => m.readonly = parse_bool(flag, k, v)?,
            "volume-nocopy" => {
                m.nocopy = parse_bool(flag, k, v)?;
                keys_for.push((k, MountType::Volume));
            }
            "volume-subpath" => {
                let sub = value(v)?;
                let p = Path::new(&sub);
                if sub.is_empty()
                    || p.is_absolute()
                    || p.components().any(|c| !matches!(c, Component::Normal(_)))
                {
                    return Err(bad(
                        flag,
                        format!("invalid volume-subpath {sub:?}: a relative path inside the volume, without '..'"),
                    ));
                }
                m.subpath = sub;
                keys_for.push((k, MountType::Volume));
            }
            "volume-driver" => {
                if v != Some("local") {
                    return Err(bad(
                        flag,
                        format!(
                            "volume driver {:?} is not available: berth has the local driver",
                            v.unwrap_or("")
                        ),
                    ));
                }
                keys_for.push((k, MountType::Volume));
            }
            "volume-label" | "volume-opt" => {
                let kv = value(v)?;
                let (lk, lv) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                if k == "volume-label" {
                    nv.labels.insert(lk.to_string(), lv.to_string());
                } else {
                    nv.options.insert(lk.to_string(), lv.to_string());
                }
                keys_for.push((k, MountType::Volume));
            }
            "bind-propagation" => {
                let p = value(v)?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(bad(
                        flag,
                        format!("invalid bind-propagation {p:?}: use rprivate, private, rshared, shared, rslave or slave"),
                    ));
                }
                m.propagation = p;
                keys_for.push((k, MountType::Bind));
            }
            "tmpfs-size" => {
                let s = value(v)?;
                m.tmpfs_size = Some(
                    model::size::parse_bytes(&s)
                        .map_err(|e| bad(flag, format!("invalid tmpfs-size {s:?}: {e}")))?,
                );
                keys_for.push((k, MountType::Tmpfs));
            }
            "tmpfs-mode" => {
                let s = value(v)?;
                m.tmpfs_mode = Some(
                    u32::from_str_radix(&s, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            bad(
                                flag,
                                format!("invalid tmpfs-mode {s:?}: an octal mode such as 1777"),
                            )
                        })?,
                );
                keys_for.push((k, MountType::Tmpfs));
            }
            "consistency" => {}
            _ => return Err(bad(flag, format!("unexpected key {k:?} in {field:?}"))),
        }
    }
    m.kind = kind.unwrap_or(MountType::Volume);
    for (k, t) in keys_for {
        if t != m.kind {
            return Err(bad(
                flag,
                format!(
                    "{k} is for type={} mounts, not type={}",
                    t.as_str(),
                    m.kind.as_str()
                ),
            ));
        }
    }
    let target = target.ok_or_else(|| bad(flag, format!("{spec:?}: target is required")))?;
    m.target = check_target(flag, spec, &target)?;
    match (m.kind, source) {
        (MountType::Tmpfs, Some(_)) => {
            return Err(bad(flag, "a tmpfs mount takes no source"));
        }
        (MountType::Tmpfs, None) => {}
        (MountType::Bind, None) => {
            return Err(bad(
                flag,
                format!("{spec:?}: source is required for a bind mount"),
            ));
        }
        (MountType::Bind, Some(s)) => {
            if !s.starts_with('/') {
                return Err(bad(
                    flag,
                    format!("invalid bind source {s:?}: it must be an absolute path"),
                ));
            }
            let clean: PathBuf = Path::new(&s).components().collect();
            // Docker: a missing source is an error for --mount.
            if std::fs::symlink_metadata(&clean).is_err() {
                return Err(bad(
                    flag,
                    format!("bind source path does not exist: {}", clean.display()),
                ));
            }
            m.source = clean.display().to_string();
        }
        (MountType::Volume, None) => m.anonymous = true,
        (MountType::Volume, Some(s)) => {
            if !valid_volume_name(&s) {
                return Err(bad(
                    flag,
                    format!("{s:?} is not a valid volume name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                ));
            }
            m.source = s;
        }
    }
    Ok((m, nv))
}

/// Check `-o` options of the local driver: `type`, `device`, `o`.
pub fn check_driver_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !["type", "device", "o"].contains(&k.as_str()) {
            return Err(bad(
                "--opt",
                format!("invalid option key {k:?}: the local driver takes type, device and o"),
            ));
        }
    }
    match (opts.get("type"), opts.get("device")) {
        (None, None) if opts.contains_key("o") => Err(bad(
            "--opt",
            "o= needs type= and device= (e.g. type=tmpfs,device=tmpfs,o=size=100m)",
        )),
        (Some(_), None) => Err(bad("--opt", "missing required option: device")),
        (None, Some(_)) => Err(bad("--opt", "missing required option: type")),
        _ => Ok(()),
    }
}

/// A new volume record.
pub fn new_record(
    name: &str,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
    anonymous: bool,
) -> VolumeRecord {
    VolumeRecord {
        name: name.to_string(),
        driver: "local".to_string(),
        created: Utc::now(),
        labels,
        options,
        anonymous,
    }
}

/// Is `path` a mount point (in this process's mount namespace)?
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == want)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount a volume made with driver options (`type=tmpfs`, `o=bind`...)
/// on its `_data` dir, unless it is mounted already. It stays mounted
/// (shared by the containers using it) until the volume is removed or the
/// host reboots.
pub fn ensure_mounted(rec: &VolumeRecord, data: &Path) -> Result<()> {
    let (Some(fstype), Some(device)) = (rec.options.get("type"), rec.options.get("device")) else {
        return Ok(());
    };
    if is_mount_point(data) {
        return Ok(());
    }
    std::fs::create_dir_all(data)
        .map_err(|e| EngineError::io(format!("creating {}", data.display()), e))?;
    let opts: Vec<String> = rec
        .options
        .get("o")
        .map(|o| o.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let (flags, _, data_opts, bind) = runtime::plan::parse_mount_options(&opts);
    let what = format!(
        "mounting volume {} ({fstype} {device}) on {}",
        rec.name,
        data.display()
    );
    let mount = |src: Option<&str>, fstype: Option<&str>, flags, d: Option<&str>| {
        nix::mount::mount(src, data, fstype, flags, d).map_err(|e| EngineError::io(&what, e))
    };
    if bind || fstype == "none" && opts.iter().any(|o| o == "bind" || o == "rbind") {
        if !Path::new(device).is_dir() {
            return Err(EngineError::invalid(
                "volume",
                format!("volume {}: device {device} is not a directory", rec.name),
            ));
        }
        let rec_flag = flags & nix::mount::MsFlags::MS_REC;
        mount(
            Some(device),
            None,
            nix::mount::MsFlags::MS_BIND | rec_flag,
            None,
        )?;
        let rest = flags - rec_flag;
        if !rest.is_empty() {
            mount(
                None,
                None,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REMOUNT | rest,
                None,
            )?;
        }
        return Ok(());
    }
    mount(
        Some(device),
        Some(fstype),
        flags,
        (!data_opts.is_empty()).then_some(data_opts.as_str()),
    )
}

/// Remove the anonymous volumes among `mounts` that no container uses.
pub(crate) fn remove_anonymous(store: &store::Store, mounts: &[MountSpec]) {
    for m in mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume && m.anonymous)
    {
        if let Err(e) = store.remove_volume(&m.source, |_, data| release_mount(data)) {
            tracing::debug!("keeping volume {}: {e}", m.source);
        }
    }
}

/// Unmount what [`ensure_mounted`] mounted. An error if it stays mounted:
/// the volume's dir is deleted next, and must never take a bound host
/// directory's content with it.
pub fn release_mount(data: &Path) -> std::result::Result<(), store::StoreError> {
    if is_mount_point(data) {
        nix::mount::umount2(data, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
            store::StoreError::Conflict(format!(
                "cannot unmount {}: {e}; the volume is kept",
                data.display()
            ))
        })?;
        if is_mount_point(data) {
            return Err(store::StoreError::Conflict(format!(
                "{} is still mounted; the volume is kept",
                data.display()
            )));
        }
    }
    Ok(())
}

/// The OCI mount for one of a container's mounts, its source resolved.
pub fn oci_mount(m: &MountSpec, source: &Path) -> Value {
    match m.kind {
        MountType::Tmpfs => {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            if m.readonly {
                opts.push("ro".into());
            }
            if let Some(s) = m.tmpfs_size {
                opts.push(format!("size={s}"));
            }
            if let Some(mode) = m.tmpfs_mode {
                opts.push(format!("mode={mode:o}"));
            }
            json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
        _ => {
            let mut opts = vec![
                "rbind".to_string(),
                if m.propagation.is_empty() {
                    "rprivate".to_string()
                } else {
                    m.propagation.clone()
                },
            ];
            if m.readonly {
                opts.push("ro".into());
            }
            json!({"destination": m.target, "type": "bind", "source": source, "options": opts})
        }
    }
}

/// Docker's `Mounts` entry of `docker inspect` for one mount.
pub fn inspect_mount(m: &MountSpec, source: &Path) -> Value {
    // As Docker shows it: the -v options as given ("z" for a -v volume
    // without any), nothing for --mount.
    let mode = match m.bind_spec.splitn(3, ':').nth(2) {
        Some(o) => o.to_string(),
        None if !m.bind_spec.is_empty() && m.kind == MountType::Volume => "z".to_string(),
        None => String::new(),
    };
    let mut v = json!({
        "Type": m.kind.as_str(),
        "Source": if m.kind == MountType::Tmpfs { String::new() } else { source.display().to_string() },
        "Destination": m.target,
        "Mode": mode,
        "RW": !m.readonly,
        "Propagation": if m.kind == MountType::Bind { if m.propagation.is_empty() { "rprivate".to_string() } else { m.propagation.clone() } } else { String::new() },
    });
    if m.kind == MountType::Volume {
        v["Name"] = json!(m.source);
        v["Driver"] = json!("local");
    }
    v
}

/// Docker's `docker volume inspect` JSON.
pub fn inspect_volume(rec: &VolumeRecord, mountpoint: &Path) -> Value {
    // `volume create` gives `{}` for both (recorded from dockerd 20.10).
    let options = json!(rec.options);
    let mut labels = json!(rec.labels);
    if rec.anonymous {
        let mut l = rec.labels.clone();
        l.insert("com.docker.volume.anonymous".into(), String::new());
        labels = json!(l);
    }
    json!({
        "CreatedAt": rec.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Driver": rec.driver,
        "Labels": labels,
        "Mountpoint": mountpoint,
        "Name": rec.name,
        "Options": options,
        "Scope": "local",
    })
}

/// What `volume prune` removed.
#[derive(Debug, Default)]
pub struct VolumePrune {
    /// Names removed.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub reclaimed: u64,
}

impl crate::Engine {
    /// `volume create`: a new volume, or the existing one of that name
    /// when its options are the same (Docker's behaviour).
    pub fn volume_create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<VolumeRecord> {
        if let Some(d) = driver {
            if d != "local" {
                return Err(bad(
                    "--driver",
                    format!("volume driver {d:?} is not available: berth has the local driver"),
                ));
            }
        }
        check_driver_options(&options)?;
        // As dockerd: a volume created without a name is anonymous (volume
        // prune takes it without --all).
        let anonymous = name.is_none();
        let name = match name {
            Some(n) => {
                if !valid_volume_name(n) {
                    return Err(bad(
                        "volume name",
                        format!("{n:?} includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                    ));
                }
                n.to_string()
            }
            None => model::ContainerId::random().as_str().to_string(),
        };
        let rec = new_record(&name, labels, options, anonymous);
        let made = self.store().create_volumes(std::slice::from_ref(&rec))?;
        if made.first() == Some(&true) {
            self.emit("volume", "create", &rec.name, &[("driver", "local")]);
            return Ok(rec);
        }
        let existing = self.store().volume(&name)?;
        if existing.options != rec.options {
            return Err(EngineError::Store(store::StoreError::Conflict(format!(
                "a volume named {name} already exists with other options: remove it first (berth volume rm {name}) or pick another name"
            ))));
        }
        Ok(existing)
    }

    /// A volume's `_data`, mounted if it has driver options.
    pub fn volume_path(&self, rec: &VolumeRecord) -> Result<PathBuf> {
        let data = self.store().volume_data(&rec.name);
        ensure_mounted(rec, &data)?;
        if !data.exists() {
            std::fs::create_dir_all(&data)
                .map_err(|e| EngineError::io(format!("creating {}", data.display()), e))?;
        }
        Ok(data)
    }

    /// `volume rm`.
    pub fn volume_remove(&self, name: &str) -> Result<VolumeRecord> {
        let rec = self
            .store()
            .remove_volume(name, |_, data| release_mount(data))?;
        self.emit("volume", "destroy", &rec.name, &[("driver", "local")]);
        Ok(rec)
    }

    /// `volume prune`: unused anonymous volumes (all unused ones with
    /// `all`) that match `keep`.
    pub fn volume_prune(
        &self,
        all: bool,
        keep: impl Fn(&VolumeRecord) -> bool,
    ) -> Result<VolumePrune> {
        let used = self.store().volumes_in_use()?;
        let mut out = VolumePrune::default();
        for v in self.store().volumes()? {
            if used.contains(&v.name) || !(all || v.anonymous) || !keep(&v) {
                continue;
            }
            let size = self.volume_size(&v);
            if self.volume_remove(&v.name).is_ok() {
                out.reclaimed += size;
                out.removed.push(v.name);
            }
        }
        Ok(out)
    }

    /// Bytes a volume's content takes on disk.
    pub fn volume_size(&self, rec: &VolumeRecord) -> u64 {
        match store::fsops::open_dir(&self.store().volume_data(&rec.name)) {
            Ok(fd) => store::fsops::disk_usage(fd.as_fd()),
            Err(_) => 0,
        }
    }

    /// `volume export`: the volume's content as a tar stream.
    pub fn volume_export(&self, name: &str, out: impl Write) -> Result<()> {
        let rec = self.store().volume(name)?;
        let data = self.volume_path(&rec)?;
        let fd = store::fsops::open_dir(&data)
            .map_err(|e| EngineError::io(format!("opening volume {name}"), e))?;
        store::fsops::tar_contents(fd.as_fd(), out)
            .map_err(|e| EngineError::io(format!("exporting volume {name}"), e))
    }

    /// `volume import`: unpack a tar stream (plain, gzip or zstd) into the
    /// volume (created if missing), safely: entries never leave it.
    pub fn volume_import(&self, name: &str, input: impl Read) -> Result<u64> {
        if self.store().volume(name).is_err() {
            self.volume_create(Some(name), None, BTreeMap::new(), BTreeMap::new())?;
        }
        let rec = self.store().volume(name)?;
        let data = self.volume_path(&rec)?;
        let done = store::layer::unpack_with(
            input,
            &data,
            &store::layer::UnpackOptions {
                plain_names: true,
                ..Default::default()
            },
        )
        .map_err(|e| {
            EngineError::io(
                format!("importing into volume {name}"),
                std::io::Error::other(e),
            )
        })?;
        Ok(done.entries)
    }

    /// Remove the anonymous volumes among `mounts` that no other container
    /// uses (`rm -v`, `--rm`).
    pub fn remove_anonymous_volumes(&self, mounts: &[MountSpec]) {
        remove_anonymous(&self.store(), mounts)
    }

    /// The host path behind a mount at start time: volumes exist (and
    /// are mounted), `:U` ones chowned to `uid:gid`, bind sources exist.
    pub(crate) fn mount_source(&self, m: &MountSpec, uid: u32, gid: u32) -> Result<PathBuf> {
        match m.kind {
            MountType::Tmpfs => Ok(PathBuf::new()),
            MountType::Bind => {
                let p = PathBuf::from(&m.source);
                if std::fs::symlink_metadata(&p).is_err() {
                    return Err(bad(
                        "--mount",
                        format!("bind source path does not exist: {}", p.display()),
                    ));
                }
                if m.chown {
                    chown(&p, uid, gid)?;
                }
                Ok(p)
            }
            MountType::Volume => {
                let rec = match self.store().volume(&m.source) {
                    Ok(r) => r,
                    Err(store::StoreError::NotFound { .. }) => {
                        // Gone behind our back (a reset store): made again empty.
                        let r =
                            new_record(&m.source, BTreeMap::new(), BTreeMap::new(), m.anonymous);
                        self.store().create_volumes(std::slice::from_ref(&r))?;
                        r
                    }
                    Err(e) => return Err(e.into()),
                };
                let data = self.volume_path(&rec)?;
                if !m.subpath.is_empty() {
                    return subpath_source(&data, &m.source, &m.subpath);
                }
                if m.chown {
                    chown(&data, uid, gid)?;
                }
                Ok(data)
            }
        }
    }

    /// Fill empty volumes from the image's content at their mount points
    /// (Docker's copy-up): `jobs` are (mount point, volume data dir).
    pub(crate) fn copy_up(&self, lower: &[PathBuf], jobs: &[(String, PathBuf)]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let view = crate::rootfs::View {
            lower: lower.to_vec(),
            upper: None,
        };
        self.in_rootfs(&view, |root| {
            for (target, data) in jobs {
                let src = match store::fsops::dir_in_root(root, Path::new(target)) {
                    Ok(fd) => fd,
                    // Nothing (or not a directory) there in the image.
                    Err(_) => continue,
                };
                let dst = store::fsops::open_dir(data)?;
                if !store::fsops::is_empty_dir(dst.as_fd())? {
                    continue;
                }
                store::fsops::copy_contents(src.as_fd(), dst.as_fd(), &Default::default())?;
                // The volume's root takes the owner and mode of the image's
                // directory (a postgres data dir owned by postgres).
                let st = nix::sys::stat::fstat(src.as_fd()).map_err(std::io::Error::from)?;
                std::os::unix::fs::chown(data, Some(st.st_uid), Some(st.st_gid))?;
                std::fs::set_permissions(
                    data,
                    std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
                )?;
            }
            Ok(())
        })
    }
}

fn chown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let fd = store::fsops::open_dir(p)
        .map_err(|e| EngineError::io(format!("opening {}", p.display()), e))?;
    store::fsops::chown_tree(fd.as_fd(), uid, gid)
        .map_err(|e| EngineError::io(format!("chowning {} (:U)", p.display()), e))
}

/// What [`crate::Engine::plan_mounts`] decided.
pub(crate) struct MountPlan {
    /// The container's mounts.
    pub mounts: Vec<MountSpec>,
    /// Volumes to create with the container (existing ones are kept).
    pub volumes: Vec<VolumeRecord>,
}

impl crate::Engine {
    /// Turn `--volumes-from`, `-v`, `--mount` and the image's `VOLUME`s
    /// into the container's mounts (Docker's precedence: explicit mounts
    /// over `--volumes-from`, both over image volumes).
    pub(crate) fn plan_mounts(
        &self,
        volume_flags: &[String],
        mount_flags: &[String],
        volumes_from: &[String],
        tmpfs: &BTreeMap<String, String>,
        image_volumes: &[String],
    ) -> Result<MountPlan> {
        let mut mounts: Vec<MountSpec> = Vec::new();
        for vf in volumes_from {
            let (name, mode) = match vf.rsplit_once(':') {
                Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
                Some((_, m)) => {
                    return Err(bad(
                        "--volumes-from",
                        format!("invalid mode {m:?} in {vf:?}: use ro or rw"),
                    ))
                }
                None => (vf.as_str(), None),
            };
            let c = self.container(name)?;
            for m in c
                .config
                .mounts
                .iter()
                .filter(|m| m.kind != MountType::Tmpfs)
            {
                let mut m = m.clone();
                // Shared, not owned: only its creator removes it with -v.
                m.anonymous = false;
                if let Some(mode) = mode {
                    m.readonly = mode == "ro";
                }
                mounts.retain(|x| x.target != m.target);
                mounts.push(m);
            }
        }
        let mut explicit: Vec<(MountSpec, NewVolume)> = Vec::new();
        for v in volume_flags {
            explicit.push((parse_volume_flag(v)?, NewVolume::default()));
        }
        for m in mount_flags {
            explicit.push(parse_mount_flag(m)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut new_opts: BTreeMap<String, NewVolume> = BTreeMap::new();
        for (mut m, nv) in explicit {
            if !seen.insert(m.target.clone()) || tmpfs.contains_key(&m.target) {
                return Err(bad(
                    "-v/--mount",
                    format!("duplicate mount point: {}", m.target),
                ));
            }
            if m.anonymous {
                m.source = model::ContainerId::random().as_str().to_string();
            }
            if m.kind == MountType::Bind && !m.bind_spec.is_empty() {
                // Docker: -v creates a missing host directory.
                if std::fs::symlink_metadata(&m.source).is_err() {
                    std::fs::create_dir_all(&m.source).map_err(|e| {
                        EngineError::io(format!("creating bind source {}", m.source), e)
                    })?;
                }
            }
            if m.kind == MountType::Volume && nv != NewVolume::default() {
                check_driver_options(&nv.options)?;
                new_opts.insert(m.source.clone(), nv);
            }
            mounts.retain(|x| x.target != m.target);
            mounts.push(m);
        }
        let mut image_volumes: Vec<String> = image_volumes
            .iter()
            .filter_map(|v| {
                let clean: PathBuf = Path::new(v).components().collect();
                let s = clean.display().to_string();
                (s.starts_with('/') && s != "/").then_some(s)
            })
            .collect();
        image_volumes.sort();
        image_volumes.dedup();
        for target in image_volumes {
            if mounts.iter().any(|m| m.target == target) || tmpfs.contains_key(&target) {
                continue;
            }
            mounts.push(MountSpec {
                kind: MountType::Volume,
                source: model::ContainerId::random().as_str().to_string(),
                target,
                anonymous: true,
                ..Default::default()
            });
        }
        let mut volumes = Vec::new();
        for m in mounts.iter().filter(|m| m.kind == MountType::Volume) {
            if volumes.iter().any(|v: &VolumeRecord| v.name == m.source) {
                continue;
            }
            let nv = new_opts.remove(&m.source).unwrap_or_default();
            volumes.push(new_record(&m.source, nv.labels, nv.options, m.anonymous));
        }
        Ok(MountPlan { mounts, volumes })
    }
}

impl crate::Engine {
    /// Copy-up at create: each empty volume the container mounts (without
    /// `nocopy`) gets the image's content at its mount point.
    pub(crate) fn fill_volumes(
        &self,
        config: &crate::config::ContainerConfig,
        layers_top_first: &[PathBuf],
    ) -> Result<()> {
        let mut jobs = Vec::new();
        // Two creates filling one new volume at once: the second waits for
        // the first and then finds it full (the helper checks again).
        let mut locks = Vec::new();
        let mut names: Vec<&str> = config
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume && !m.nocopy && m.subpath.is_empty())
            .map(|m| m.source.as_str())
            .collect();
        names.sort();
        names.dedup();
        for n in names {
            let dir = self.store().volume_dir(n);
            if let Ok(f) = std::fs::File::open(&dir) {
                if let Ok(l) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
                    locks.push(l);
                }
            }
        }
        for m in config
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume && !m.nocopy)
        {
            let rec = self.store().volume(&m.source)?;
            let data = self.volume_path(&rec)?;
            let empty = store::fsops::open_dir(&data)
                .and_then(|fd| store::fsops::is_empty_dir(fd.as_fd()))
                .unwrap_or(false);
            if empty {
                jobs.push((m.target.clone(), data));
            }
        }
        let lower: Vec<PathBuf> = layers_top_first.iter().rev().cloned().collect();
        let done = self.copy_up(&lower, &jobs);
        drop(locks);
        done
    }
}

impl crate::Engine {
    /// A volume by name.
    pub fn volume(&self, name: &str) -> Result<VolumeRecord> {
        Ok(self.store().volume(name)?)
    }
}

/// `volume-subpath`: `sub` inside the volume's `data` dir, resolved as if
/// `data` were the root (a symlink in the volume, which a container may
/// have made, cannot lead out of it), as the host path it is now.
fn subpath_source(data: &Path, volume: &str, sub: &str) -> Result<PathBuf> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let root = std::fs::File::open(data)
        .map_err(|e| EngineError::io(format!("opening volume {volume}"), e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd(), sub, how).map_err(|e| {
        bad(
            "--mount",
            format!(
                "volume-subpath {sub:?} of volume {volume}: {}",
                std::io::Error::from(e)
            ),
        )
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| EngineError::io("resolving the volume subpath", e))?;
    let data = std::fs::canonicalize(data)
        .map_err(|e| EngineError::io(format!("opening volume {volume}"), e))?;
    if !real.starts_with(&data) {
        return Err(bad(
            "--mount",
            format!("volume-subpath {sub:?} of volume {volume} leads out of the volume"),
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let m = parse_volume_flag("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str(), m.readonly),
            (MountType::Volume, "data", "/var/lib/data", true)
        );
        let m = parse_volume_flag("/srv/x/:/x").unwrap();
        assert_eq!((m.kind, m.source.as_str()), (MountType::Bind, "/srv/x"));
        let m = parse_volume_flag("/cache").unwrap();
        assert!(m.anonymous && m.kind == MountType::Volume && m.source.is_empty());
        let m = parse_volume_flag("v1:/d:nocopy,U,rw").unwrap();
        assert!(m.nocopy && m.chown && !m.readonly);
        let m = parse_volume_flag("/h:/d:rshared,z").unwrap();
        assert_eq!(m.propagation, "rshared");
        for b in [
            "relative/path:/d",
            "./x:/d",
            "v:d",
            "v:/",
            "v:/a/../b",
            ":/d",
            "v:/d:bogus",
            "v:/d:ro,rw",
            "/h:/d:nocopy",
            "a:b:c:d",
        ] {
            assert!(parse_volume_flag(b).is_err(), "{b}");
        }
    }

    #[test]
    fn mount_flags() {
        let (m, nv) = parse_mount_flag(
            "type=volume,source=v,target=/d,readonly,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs",
        )
        .unwrap();
        assert!(m.readonly && m.nocopy && m.kind == MountType::Volume);
        assert_eq!(nv.labels["a"], "b");
        assert_eq!(nv.options["type"], "tmpfs");
        let (m, _) = parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!((m.tmpfs_size, m.tmpfs_mode), (Some(1 << 20), Some(0o1770)));
        let (m, _) = parse_mount_flag("type=bind,src=/tmp,dst=/t,bind-propagation=rslave").unwrap();
        assert_eq!(
            (m.source.as_str(), m.propagation.as_str()),
            ("/tmp", "rslave")
        );
        let (m, _) = parse_mount_flag("target=/anon").unwrap();
        assert!(m.anonymous);
        for b in [
            "type=bind,src=/definitely/not/here,dst=/x",
            "type=bind,dst=/x",
            "type=tmpfs,src=x,dst=/x",
            "type=volume,src=v",
            "type=nfs,dst=/x",
            "type=volume,src=v,dst=/x,tmpfs-size=1m",
            "type=tmpfs,dst=/x,tmpfs-mode=999",
            "type=volume,src=v,dst=/x,bogus=1",
            "type=volume,src=v,dst=/x,readonly=maybe",
        ] {
            assert!(parse_mount_flag(b).is_err(), "{b}");
        }
    }

    #[test]
    fn driver_options() {
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(check_driver_options(&o(&[])).is_ok());
        assert!(check_driver_options(&o(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert!(check_driver_options(&o(&[("type", "tmpfs")])).is_err());
        assert!(check_driver_options(&o(&[("o", "size=1m")])).is_err());
        assert!(check_driver_options(&o(&[("size", "1m")])).is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
