//! seccomp filter loading (filled in by the runtime work)
