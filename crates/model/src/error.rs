use thiserror::Error;

/// Why a piece of user input could not be parsed into one of the model types.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("invalid digest {0:?}: expected sha256:<64 hex characters>")]
    Digest(String),
    #[error("invalid reference format {input:?}: {why}")]
    Reference { input: String, why: &'static str },
    #[error("invalid id {0:?}: expected 64 lowercase hex characters")]
    Id(String),
    #[error(
        "invalid size {0:?}: expected a number with an optional unit b, k, m or g (e.g. 512m)"
    )]
    Size(String),
    #[error("invalid signal {0:?}: use a name such as SIGTERM or TERM, or a number from 1 to 64")]
    Signal(String),
    #[error("bad format: {0}")]
    DeviceFormat(String),
    #[error("bad format for device path: {0}")]
    DevicePath(String),
    #[error("invalid rate for device: {0}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")]
    DeviceRate(String),
    #[error("invalid rate for device: {0}. The correct format is <device-path>:<number>. Number must be a positive integer")]
    DeviceIops(String),
    #[error("invalid weight for device: {0}")]
    DeviceWeight(String),
    #[error("unknown capability {0:?}: see capabilities(7) for the names, e.g. NET_ADMIN or CAP_NET_ADMIN")]
    Capability(String),
}
