//! Receiving a file descriptor over a unix socket (SCM_RIGHTS), as OCI
//! runtimes hand over a container's pty master through `--console-socket`.
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Receive one fd sent with SCM_RIGHTS on a connected unix socket.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                for &extra in &fds[1..] {
                    // SAFETY: the kernel just installed these fds for us; we
                    // own them and close the ones we do not keep.
                    drop(unsafe { OwnedFd::from_raw_fd(extra) });
                }
                // SAFETY: as above, a fresh fd installed by SCM_RIGHTS.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(io::Error::other("no file descriptor in the message"))
}

/// Send `data` on a connected unix socket, with `fd` attached (SCM_RIGHTS)
/// when given.
pub fn send_with_fd(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage};
    let iov = [std::io::IoSlice::new(data)];
    let fds = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = fds
        .as_ref()
        .map(|f| ControlMessage::ScmRights(f))
        .into_iter()
        .collect();
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(io::Error::from)?;
    if n != data.len() {
        return Err(io::Error::other("short write on the socket"));
    }
    Ok(())
}

/// Read from a unix socket into `buf`, taking the fd sent with the bytes,
/// if any (others are closed). Returns (bytes read, fd).
pub fn recv_with_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut got = None;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for &fd in &fds {
                // SAFETY: the kernel just installed these fds for us; we own
                // them: the first is kept, the others closed.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, got))
}

/// Bytes written on the connected unix stream socket `sock` that its peer
/// has not read yet (`SIOCOUTQ`: on a unix socket they stay charged to the
/// sender until the reader takes them). 0 means the peer has read
/// everything sent so far. A raw fd, as servers keep it beside the stream
/// that owns it: a closed one only answers EBADF (or about another socket).
pub fn unread_bytes(sock: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SIOCOUTQ is TIOCOUTQ's number on Linux; libc names only the latter.
    // SAFETY: the ioctl writes one int through the pointer, which is valid
    // and ours for the call; any fd value is harmless to the kernel.
    let r = unsafe { libc::ioctl(sock, libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// Send `count` bytes of `file` from `offset` on socket `out` with
/// `sendfile(2)`: the page cache goes to the socket without a copy through
/// user memory. The bytes sent (fewer when the socket's buffer fills; a
/// non-blocking socket that is full answers `WouldBlock`).
pub fn send_file(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = offset as libc::off64_t;
    nix::sys::sendfile::sendfile64(out, file, Some(&mut off), count).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn unread_bytes_counts_what_the_peer_has_not_read() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(unread_bytes(a.as_raw_fd()).unwrap(), 0);
        a.write_all(b"hello").unwrap();
        assert!(unread_bytes(a.as_raw_fd()).unwrap() > 0);
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(unread_bytes(a.as_raw_fd()).unwrap(), 0);
    }
}

/// The longest path a `sockaddr_un` holds (108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

/// Run `f` with an address for the unix socket at `path` that fits a
/// `sockaddr_un`: `path` itself when short enough, else
/// `/proc/self/fd/N/NAME` through a descriptor of its directory (kept open
/// until `f` returns) — a state root deep in the file system (a test's, a
/// long `XDG_RUNTIME_DIR`) still gets its sockets.
fn with_short_address<T>(
    path: &std::path::Path,
    f: impl FnOnce(&std::path::Path) -> io::Result<T>,
) -> io::Result<T> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() <= SUN_PATH_MAX {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let dir = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)?;
    let short = std::path::Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    if short.as_os_str().as_bytes().len() > SUN_PATH_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the socket name {} is longer than a unix socket address may be",
                name.to_string_lossy()
            ),
        ));
    }
    f(&short)
}

/// `UnixListener::bind`, for paths of any length (see `with_short_address`).
pub fn bind_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    with_short_address(path, |p| std::os::unix::net::UnixListener::bind(p))
}

/// `UnixStream::connect`, for paths of any length.
pub fn connect_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixStream> {
    with_short_address(path, |p| std::os::unix::net::UnixStream::connect(p))
}

#[cfg(test)]
mod long_path_tests {
    use std::io::{Read, Write};

    #[test]
    fn a_socket_deeper_than_sun_path_binds_and_connects() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = tmp.path().to_path_buf();
        while dir.as_os_str().len() < 150 {
            dir = dir.join("a-long-directory-name");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c0ffee.sock");
        assert!(std::os::unix::net::UnixListener::bind(&path).is_err());
        let l = super::bind_unix(&path).unwrap();
        assert!(path.exists());
        let mut c = super::connect_unix(&path).unwrap();
        c.write_all(b"hi").unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut got = [0u8; 2];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    }
}
