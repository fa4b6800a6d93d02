//! `sd_notify(3)`: under systemd's `Type=notify` the service manager waits
//! for `READY=1` on the datagram socket named by `NOTIFY_SOCKET` before it
//! counts the service as started (and starts what is ordered after it), and
//! takes `STOPPING=1` as the start of a stop. dockerd sends both: `READY=1`
//! once its API listens, `STOPPING=1` when it begins to shut down.
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where to send the service manager our state.
#[derive(Debug)]
pub(crate) struct Notify {
    addr: SocketAddr,
    shown: String,
}

impl Notify {
    /// `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket), taken
    /// out of the environment so that nothing the server starts (the
    /// `__api-op` helpers, container monitors) speaks for the service.
    /// A value that names no socket is reported and ignored (dockerd's
    /// notify fails quietly too). Call it before starting threads: it
    /// changes the environment.
    pub(crate) fn from_env() -> Option<Notify> {
        let raw = std::env::var_os("NOTIFY_SOCKET")?;
        std::env::remove_var("NOTIFY_SOCKET");
        let shown = raw.to_string_lossy().into_owned();
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(raw.as_os_str());
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(&raw),
            None => Err(std::io::Error::other(
                "not a socket path or an @abstract name",
            )),
        };
        match addr {
            Ok(addr) => Some(Notify { addr, shown }),
            Err(e) => {
                eprintln!("berth serve: NOTIFY_SOCKET={shown} ignored: {e}");
                None
            }
        }
    }

    /// Send `state` (`READY=1`, `STOPPING=1`); a failure is reported, not
    /// fatal (systemd then times the start out, as it would for dockerd).
    pub(crate) fn send(&self, state: &str) {
        let sent =
            UnixDatagram::unbound().and_then(|s| s.send_to_addr(state.as_bytes(), &self.addr));
        if let Err(e) = sent {
            eprintln!(
                "berth serve: telling the service manager {state} on {}: {e}",
                self.shown
            );
        }
    }
}
