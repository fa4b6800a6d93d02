//! systemd socket activation for front ends that listen (`berth serve -H
//! fd://`): adopting the passed fds needs `unsafe`, so it lives in `sys`.
pub use sys::activation::{listen_fds, LISTEN_FDS_START};
