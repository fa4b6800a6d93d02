//! Loading a compiled seccomp filter (classic BPF, `struct sock_filter`
//! array as libseccomp exports it) into the calling thread.
use std::io;

/// Install `bpf` with `seccomp(SECCOMP_SET_MODE_FILTER)`. The caller must
/// hold CAP_SYS_ADMIN or have set no_new_privs (berth loads the filter
/// while CAP_SYS_ADMIN is still held, as runc does, so the container keeps
/// Docker's NoNewPrivs=0).
pub fn load_filter(bpf: &[u8]) -> io::Result<()> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    if bpf.is_empty() || !bpf.len().is_multiple_of(INSN) || bpf.len() / INSN > u16::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "seccomp program of {} bytes is not a whole number of instructions",
                bpf.len()
            ),
        ));
    }
    // Copy into properly aligned instructions: the byte slice may be unaligned.
    let insns: Vec<libc::sock_filter> = bpf
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `insns`, a live, correctly sized and aligned
    // array for the duration of the call; the kernel copies it and keeps no
    // reference. SECCOMP_SET_MODE_FILTER with flags 0 touches nothing else.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_partial_programs() {
        assert!(load_filter(&[]).is_err());
        assert!(load_filter(&[0u8; 7]).is_err());
    }
}
