//! seccomp profiles (in progress)
