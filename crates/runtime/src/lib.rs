//! berth's container runtime (being built: see issue 3).
#![forbid(unsafe_code)]
