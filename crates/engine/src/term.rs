//! Terminal and process helpers a front end needs around the engine's
//! operations: the window size of a terminal (to copy onto a container's
//! pty) and a plain fork (for a progress renderer drawing in its own
//! process). Front ends take them from here rather than from `sys`.

pub use sys::process::{exit_now, fork, Forked};
pub use sys::tty::{get_winsize, set_winsize, WinSize};
