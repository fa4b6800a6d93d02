//! Working on a container's (or an image's) root filesystem from the host
//! without a running container: the union of its layers is mounted in a
//! child process's own mount namespace (nothing appears in the host's
//! mount table, and nothing is left mounted if berth is killed), and the
//! work runs there on a directory fd of that root.
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::error::{EngineError, Result};

/// Which tree to mount.
#[derive(Debug, Clone)]
pub struct View {
    /// Read-only layers, base first.
    pub lower: Vec<PathBuf>,
    /// A container's upper and work dirs: mounted read-write (the
    /// container must not be running). `None`: read-only.
    pub upper: Option<(PathBuf, PathBuf)>,
    /// A container's copied root filesystem (the `vfs` storage driver):
    /// bound read-write instead of any layers.
    pub copy: Option<PathBuf>,
}

fn mount_view(view: &View, target: &Path) -> std::io::Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    if let Some(copy) = &view.copy {
        mount(
            Some(copy.as_path()),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        return Ok(());
    }
    match (&view.upper, view.lower.as_slice()) {
        (None, []) => Ok(()),
        (None, [one]) => {
            mount(
                Some(one.as_path()),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )?;
            Ok(())
        }
        (upper, lower) => {
            let ov = runtime::Overlay {
                lower: lower.to_vec(),
                upper: upper.as_ref().map(|u| u.0.clone()).unwrap_or_default(),
                work: upper.as_ref().map(|u| u.1.clone()).unwrap_or_default(),
                copy: None,
            };
            let (mut data, mut cwd) = ov.mount_data(true);
            let mut _held = Vec::new();
            if !runtime::Overlay::fits(&data) {
                (data, _held) = ov.mount_data_by_fd()?;
                cwd = None;
            }
            if upper.is_none() {
                data = data
                    .split(',')
                    .filter(|o| o.starts_with("lowerdir="))
                    .collect::<Vec<_>>()
                    .join(",");
            }
            if let Some(cwd) = cwd {
                std::env::set_current_dir(cwd)?;
            }
            let flags = if upper.is_none() {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            mount(
                Some("overlay"),
                target,
                Some("overlay"),
                flags,
                Some(data.as_str()),
            )?;
            std::env::set_current_dir("/")?;
            Ok(())
        }
    }
}

/// Marks a helper's error message as "not found".
const NOT_FOUND: &str = "\u{1}";

impl crate::Engine {
    /// Run `work` on the root of `view` in a child process with its own
    /// mount namespace; its error comes back as the result. `work` runs in
    /// a forked copy of this process: it must not use the store.
    pub(crate) fn in_rootfs(
        &self,
        view: &View,
        work: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<()>,
    ) -> Result<()> {
        let tmp = self.store().tmp_dir("rootfs")?;
        let target = tmp.path().to_path_buf();
        let (r, w) = nix::unistd::pipe().map_err(|e| EngineError::io("pipe", e))?;
        self.close_store_for_fork();
        match sys::process::clone_fork(libc::CLONE_NEWNS)
            .map_err(|e| EngineError::io("starting a helper process", e))?
        {
            sys::process::Forked::Child => {
                drop(r);
                let res = mount_view(view, &target)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("mounting the root filesystem: {e}"))
                    })
                    .and_then(|()| store::fsops::open_dir(&target))
                    .and_then(|root: OwnedFd| work(root.as_fd()));
                let code = match res {
                    Ok(()) => 0,
                    Err(e) => {
                        // A missing path stays one for the caller (a 404).
                        if e.kind() == std::io::ErrorKind::NotFound {
                            let _ = nix::unistd::write(&w, NOT_FOUND.as_bytes());
                        }
                        let _ = nix::unistd::write(&w, e.to_string().as_bytes());
                        1
                    }
                };
                sys::process::exit_now(code)
            }
            sys::process::Forked::Parent(pid) => {
                drop(w);
                let mut msg = String::new();
                let _ = std::fs::File::from(r).read_to_string(&mut msg);
                let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
                    .map_err(|e| EngineError::io("waiting for a helper process", e))?;
                drop(tmp);
                match status {
                    nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                    _ if !msg.is_empty() => {
                        let source = match msg.strip_prefix(NOT_FOUND) {
                            Some(m) => std::io::Error::new(std::io::ErrorKind::NotFound, m),
                            None => std::io::Error::other(msg),
                        };
                        Err(EngineError::io(
                            "working on the container's filesystem",
                            source,
                        ))
                    }
                    other => Err(EngineError::io(
                        "working on the container's filesystem",
                        std::io::Error::other(format!("the helper process ended: {other:?}")),
                    )),
                }
            }
        }
    }
}
