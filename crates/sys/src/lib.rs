//! The only crate of berth that uses `unsafe`: thin, documented wrappers over
//! the Linux syscalls the rest of berth needs and that `nix` does not cover
//! safely (fork/clone in a single-threaded process, seccomp filter loading,
//! close_range). Every `unsafe` block states the invariant it relies on.
#![allow(unsafe_code)]

/// Loading a compiled seccomp BPF program into the calling thread.
pub mod seccomp;
