//! berth's container runtime (being built: see issue 3).
#![forbid(unsafe_code)]

/// Docker-format seccomp profiles turned into OCI seccomp and compiled, cached BPF.
pub mod seccomp;
/// cgroup v1 and v2 over plain cgroupfs writes, hierarchy detected once.
pub mod cgroup;
