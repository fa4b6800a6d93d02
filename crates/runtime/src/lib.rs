//! berth's container runtime: everything between an OCI runtime spec and a
//! running container process.
//!
//! It owns the start path (namespaces, rootfs and pivot_root, devices,
//! masked paths, credentials, capabilities, seccomp, exec) behind the small
//! [`Runtime`] trait with two implementations: [`builtin::Builtin`], our own
//! start path, and [`external::External`], any OCI runtime binary (runc,
//! crun) driven with a bundle. It also joins running containers for `exec`.
//! It does not know about images, the store or the CLI: the engine turns
//! those into a [`SpawnRequest`].
#![forbid(unsafe_code)]

/// Our own start path: clone into namespaces, set up the rootfs, exec.
pub mod builtin;
/// cgroup v1 and v2 over plain cgroupfs writes, hierarchy detected once.
pub mod cgroup;
/// The runtime's error type.
pub mod error;
/// Running a new process inside a running container (`berth exec`).
pub mod exec;
/// An external OCI runtime binary (runc, crun) driven with a bundle.
pub mod external;
/// Parsing the OCI spec into the steps the start path performs.
pub mod plan;
/// Docker-format seccomp profiles turned into OCI seccomp and compiled, cached BPF.
pub mod seccomp;
/// User namespaces: id maps, idmapped layers and mounts made by the parent.
pub mod userns;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use error::RuntimeError;

/// An overlayfs root filesystem: read-only layers plus the container's own
/// writable upper dir. Mounted at the spec's `root.path`.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// Lower dirs, base layer first.
    pub lower: Vec<PathBuf>,
    /// The container's upper dir.
    pub upper: PathBuf,
    /// overlayfs' work dir (same filesystem as `upper`).
    pub work: PathBuf,
    /// A copied root filesystem (podman's `vfs` storage driver: the image's
    /// layers copied at create), bound as the root instead of an overlay
    /// where overlayfs cannot be mounted, was asked not to be, or for
    /// `--userns=keep-id` (rootless: the copy's owners are shifted).
    pub copy: Option<PathBuf>,
}

impl Overlay {
    /// The overlayfs mount data. overlayfs takes its options in one page:
    /// with `relative` and all layers sharing a parent dir, they are named
    /// relative to it (returned, to `chdir` into before mounting) so many
    /// more fit.
    pub fn mount_data(&self, relative: bool) -> (String, Option<PathBuf>) {
        let parent = self
            .lower
            .first()
            .and_then(|p| p.parent())
            .map(PathBuf::from);
        let shared = relative
            && parent
                .as_ref()
                .is_some_and(|p| self.lower.iter().all(|l| l.parent() == Some(p.as_path())));
        let lower: Vec<String> = self
            .lower
            .iter()
            .rev()
            .map(|l| match (shared, l.file_name()) {
                (true, Some(n)) => n.to_string_lossy().into_owned(),
                _ => l.display().to_string(),
            })
            .collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}{}",
            lower.join(":"),
            self.upper.display(),
            self.work.display(),
            userxattr()
        );
        (data, if shared { parent } else { None })
    }

    /// Mount data that fits overlayfs' one page however many lower dirs
    /// there are: each is opened here and named by its
    /// `/proc/self/fd/N` link (overlayfs resolves them at mount time).
    /// The fds must stay open until the mount is made. Used when
    /// [`Overlay::mount_data`]'s names would not fit.
    pub fn mount_data_by_fd(&self) -> std::io::Result<(String, Vec<std::os::fd::OwnedFd>)> {
        use std::os::fd::AsRawFd;
        let mut fds = Vec::with_capacity(self.lower.len());
        for l in &self.lower {
            let f = std::fs::File::open(l)?;
            fds.push(std::os::fd::OwnedFd::from(f));
        }
        let lower: Vec<String> = fds
            .iter()
            .rev()
            .map(|f| format!("/proc/self/fd/{}", f.as_raw_fd()))
            .collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}{}",
            lower.join(":"),
            self.upper.display(),
            self.work.display(),
            userxattr()
        );
        Ok((data, fds))
    }

    /// Do [`Overlay::mount_data`]'s options fit overlayfs' page?
    pub fn fits(data: &str) -> bool {
        data.len() < 4000
    }
}

/// In a user namespace (rootless berth) overlayfs can neither read nor
/// set `trusted.overlay.*`: `userxattr` makes it use `user.overlay.*`,
/// which is where the store writes opaque markers there.
fn userxattr() -> &'static str {
    if sys::process::in_user_namespace() {
        ",userxattr"
    } else {
        ""
    }
}

/// What a runtime needs to start one container's init process.
pub struct SpawnRequest<'a> {
    /// The container id (external runtimes name their state by it).
    pub id: &'a str,
    /// The OCI runtime spec.
    pub spec: &'a oci_spec::runtime::Spec,
    /// The bundle dir (holds `config.json` for external runtimes).
    pub bundle: &'a std::path::Path,
    /// The overlay to mount at `spec.root.path`.
    pub overlay: &'a Overlay,
    /// The init's stdin, stdout, stderr (the pty slave three times for `-t`).
    pub stdio: [OwnedFd; 3],
    /// Compiled seccomp filter to load, if the spec has seccomp.
    pub seccomp_bpf: Option<&'a [u8]>,
    /// Called with the child's pid before it is released to set itself up.
    /// On cgroup v1 hosts the built-in path's child joins the cgroups named
    /// by the spec's `cgroupsPath` itself (see [`builtin`]); on v2 this hook
    /// must put it there.
    pub before_release: &'a dyn Fn(i32) -> Result<(), RuntimeError>,
    /// Held shut until something outside is ready (rootless berth's network
    /// tool configuring the namespace): the read end of a pipe. The
    /// built-in path's child reads one byte from it after its own setup,
    /// just before it execs the command, so that setup and the outside
    /// work overlap; at EOF the start fails (125). Runtimes that cannot
    /// pass it to the child wait for the byte before releasing it.
    pub exec_gate: Option<OwnedFd>,
}

/// The start failure of a container whose [`SpawnRequest::exec_gate`] was
/// closed without its byte: the caller knows why, and says so instead.
pub const EXEC_GATE_CLOSED: &str =
    "the container's network was not set up: its network tool exited";

/// A started container.
#[derive(Debug)]
pub struct Spawned {
    /// The process to wait for: a child of the caller whose exit status is
    /// the container's (the init itself, or the external runtime process).
    pub wait_pid: i32,
    /// The container's init process, in the caller's pid namespace.
    pub init_pid: i32,
    /// The pty master the runtime made for a `terminal` spec, if it made
    /// its own (external runtimes, through `--console-socket`); the caller
    /// reads the container's output from it instead of its own pty.
    pub console: Option<OwnedFd>,
}

/// One way to start containers from an OCI spec.
pub trait Runtime {
    /// The runtime's name as `--runtime` takes it (`berth`, `runc`).
    fn name(&self) -> &str;
    /// Start the container's init as a child of the calling, single-threaded
    /// process. Returns once the container's command has been exec'd, or
    /// with [`RuntimeError::Start`] carrying 126/127 if it could not be.
    fn spawn(&self, req: SpawnRequest<'_>) -> Result<Spawned, RuntimeError>;
    /// Send a signal to the container's init.
    fn signal(&self, id: &str, init_pid: i32, signal: i32) -> Result<(), RuntimeError>;
    /// Release what the runtime holds for a container that has exited
    /// (external runtime state, host mounts). Idempotent, best effort.
    fn cleanup(&self, id: &str, rootfs: &std::path::Path) -> Result<(), RuntimeError>;
}

/// Pick a runtime by `--runtime` name: `berth` (built-in, the default) or a
/// path/name of an OCI runtime binary.
pub fn by_name(name: &str, state_root: &std::path::Path) -> Result<Box<dyn Runtime>, RuntimeError> {
    match name {
        "" | "berth" | "builtin" => Ok(Box::new(builtin::Builtin)),
        other => Ok(Box::new(external::External::find(other, state_root)?)),
    }
}
