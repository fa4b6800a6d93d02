//! The only crate of berth that uses `unsafe`: thin, documented wrappers over
//! the Linux syscalls the rest of berth needs and that `nix` does not cover
//! safely (fork/clone in a single-threaded process, seccomp filter loading,
//! close_range, pidfds, terminal ioctls, adopting socket-activated fds).
//! Every `unsafe` block states the invariant it relies on. Nothing here
//! knows about containers or images.
#![allow(unsafe_code)]

/// systemd socket activation: adopting the listening sockets passed as fds.
pub mod activation;
/// Named fault points where crash tests stop (and kill) a process.
pub mod faults;
/// Inode flags (the ext4 top-directory hint).
pub mod fsattr;
/// Read-only file mappings.
pub mod mmap;
/// The new mount API: open_tree/move_mount for bind mounts across
/// pivot_root, mount_setattr (idmapped mounts), fsopen/fsconfig/fsmount.
pub mod mount;
/// Process creation (fork/clone into new namespaces), fd hygiene, pidfds, signals.
pub mod process;
/// Loading a compiled seccomp BPF program into the calling thread.
pub mod seccomp;
/// Receiving fds over unix sockets (console sockets).
pub mod socket;
/// Terminal ioctls: controlling tty and window size.
pub mod tty;
