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
