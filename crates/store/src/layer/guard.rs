//! Bounds on what a layer stream may cost the disk: decompression bombs
//! (a few MB of gzip that expand to terabytes) and a filesystem filling up
//! under an unpack. Both are checked on the decoded stream, before the
//! bytes reach the tar parser, so the refusal comes before the write.
//!
//! The expansion bound: a compressed stream may decode to at most
//! `max(floor, ratio × compressed size)` bytes (the declared size of the
//! blob when the caller knows it, else the compressed bytes read so far).
//! gzip's format allows ~1032:1, zstd far more, so the format itself
//! bounds nothing; real layers compress 2–10:1, so a ratio of 100 over a
//! floor of 1 GiB refuses only streams that are mostly one repeated byte
//! (see docs/architecture.md). Both are `berth.toml` settings.
//!
//! The free-space bound: every so often (at most every 8 MiB, more often
//! when the reserve is small) the destination's filesystem is asked how
//! much it has left (`fstatvfs`); below the reserve the unpack stops.
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::rc::Rc;

/// How much free space an unpack leaves on the store's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// 256 MiB, or 5% of the filesystem if that is less (a small state
    /// root, e.g. a tmpfs, still gets to use most of itself).
    Auto,
    /// This many bytes.
    Bytes(u64),
}

impl Reserve {
    /// The reserve on a filesystem of `total` bytes.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            Reserve::Auto => (256 << 20).min(total / 20),
            Reserve::Bytes(n) => n,
        }
    }
}

/// The bounds of one unpack (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A compressed stream may decode to this many times its size…
    pub expansion_ratio: u64,
    /// …or to this many bytes, whichever is larger.
    pub expansion_floor: u64,
    /// Free space kept on the destination's filesystem.
    pub reserve: Reserve,
}

/// Default [`Limits::expansion_ratio`].
pub const DEFAULT_EXPANSION_RATIO: u64 = 100;
/// Default [`Limits::expansion_floor`]: 1 GiB.
pub const DEFAULT_EXPANSION_FLOOR: u64 = 1 << 30;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            expansion_ratio: DEFAULT_EXPANSION_RATIO,
            expansion_floor: DEFAULT_EXPANSION_FLOOR,
            reserve: Reserve::Auto,
        }
    }
}

impl Limits {
    /// The most a stream of `compressed` bytes may decode to.
    pub fn expansion_limit(&self, compressed: u64) -> u64 {
        self.expansion_floor
            .max(self.expansion_ratio.saturating_mul(compressed))
    }
}

/// Why a guarded stream stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The decoded stream passed [`Limits::expansion_limit`].
    Expands {
        /// Compressed bytes the limit was computed from.
        compressed: u64,
        /// The limit.
        limit: u64,
        /// The ratio in force.
        ratio: u64,
    },
    /// The filesystem has less than the reserve left.
    DiskFull {
        /// Bytes available.
        available: u64,
        /// The reserve.
        reserve: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Expands {
                compressed,
                limit,
                ratio,
            } => write!(
                f,
                "it decompresses to more than {} from {} compressed (over {ratio}:1, a decompression bomb?); \
                 if the image is trusted, raise `layer_expansion_ratio` or `layer_expansion_floor` in the [storage] section of berth.toml",
                human(*limit),
                human(*compressed)
            ),
            Refusal::DiskFull { available, reserve } => write!(
                f,
                "the store's filesystem has only {} free and berth keeps {} free there: free space \
                 (berth system prune, berth image prune -a) and try again",
                human(*available),
                human(*reserve)
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// `1.5 GiB`, `12 MiB`, `300 B`.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Counts the compressed bytes read (shared with the guard on the
/// decoded side).
pub struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The decoded stream, checked against the limits; a refusal is kept in
/// `refused` (the tar parser may wrap the error it returns).
pub(crate) struct Guard<R> {
    pub inner: R,
    /// Compressed bytes read so far; `None` for a plain stream.
    pub compressed: Option<Rc<Cell<u64>>>,
    /// The blob's declared size, if known.
    pub declared: Option<u64>,
    pub limits: Limits,
    /// The destination, for `fstatvfs`; `None`: no free-space check.
    pub dest: Option<File>,
    pub out: u64,
    pub next_check: u64,
    pub refused: Rc<RefCell<Option<Refusal>>>,
}

impl<R> Guard<R> {
    pub(crate) fn new(
        inner: R,
        compressed: Option<Rc<Cell<u64>>>,
        declared: Option<u64>,
        limits: Limits,
        dest: Option<&Path>,
    ) -> io::Result<Guard<R>> {
        let dest = dest.map(File::open).transpose()?;
        Ok(Guard {
            inner,
            compressed,
            declared,
            limits,
            dest,
            out: 0,
            next_check: 0,
            refused: Rc::new(RefCell::new(None)),
        })
    }

    fn refuse(&self, r: Refusal) -> io::Error {
        let e = io::Error::new(io::ErrorKind::InvalidData, r.clone());
        *self.refused.borrow_mut() = Some(r);
        e
    }

    fn check_space(&mut self) -> io::Result<()> {
        let Some(dest) = &self.dest else {
            return Ok(());
        };
        let st = nix::sys::statvfs::fstatvfs(dest.as_fd()).map_err(io::Error::from)?;
        let frag = st.fragment_size() as u64;
        let available = (st.blocks_available() as u64).saturating_mul(frag);
        let reserve = self
            .limits
            .reserve
            .bytes((st.blocks() as u64).saturating_mul(frag));
        if available < reserve {
            return Err(self.refuse(Refusal::DiskFull { available, reserve }));
        }
        // Often enough that the reserve cannot be crossed between checks.
        let step = (reserve / 2).clamp(64 << 10, 8 << 20);
        self.next_check = self.out + step;
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(r) = self.refused.borrow().clone() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, r));
        }
        if self.out >= self.next_check {
            self.check_space()?;
        }
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if let Some(c) = &self.compressed {
            let compressed = c.get().max(self.declared.unwrap_or(0));
            let limit = self.limits.expansion_limit(compressed);
            if self.out > limit {
                return Err(self.refuse(Refusal::Expands {
                    compressed,
                    limit,
                    ratio: self.limits.expansion_ratio,
                }));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_reserve() {
        let l = Limits::default();
        assert_eq!(l.expansion_limit(1 << 20), 1 << 30);
        assert_eq!(l.expansion_limit(100 << 20), 10_000 << 20);
        assert_eq!(Reserve::Auto.bytes(64 << 20), (64 << 20) / 20);
        assert_eq!(Reserve::Auto.bytes(1 << 40), 256 << 20);
        assert_eq!(Reserve::Bytes(7).bytes(1 << 40), 7);
        assert_eq!(human(300), "300 B");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }

    #[test]
    fn a_stream_past_its_ratio_is_refused_and_one_within_passes() {
        let limits = Limits {
            expansion_ratio: 10,
            expansion_floor: 1000,
            reserve: Reserve::Bytes(0),
        };
        let run = |decoded: usize, compressed: u64| {
            let c = Rc::new(Cell::new(compressed));
            let data = vec![0u8; decoded];
            let mut g = Guard::new(&data[..], Some(c), None, limits, None).unwrap();
            let r = io::copy(&mut g, &mut io::sink());
            let why = g.refused.borrow().clone();
            (r.is_ok(), why)
        };
        assert_eq!(run(1000, 1), (true, None));
        assert_eq!(run(2000, 200), (true, None));
        let (ok, why) = run(2001, 200);
        assert!(!ok);
        assert!(
            matches!(why, Some(Refusal::Expands { limit: 2000, .. })),
            "{why:?}"
        );
        // A plain stream has no ratio.
        let data = vec![0u8; 5000];
        let mut g = Guard::new(&data[..], None, None, limits, None).unwrap();
        assert!(io::copy(&mut g, &mut io::sink()).is_ok());
    }

    #[test]
    fn a_filesystem_below_the_reserve_stops_the_stream() {
        let d = tempfile::tempdir().unwrap();
        let limits = Limits {
            reserve: Reserve::Bytes(u64::MAX),
            ..Limits::default()
        };
        let data = [0u8; 10];
        let mut g = Guard::new(&data[..], None, None, limits, Some(d.path())).unwrap();
        assert!(io::copy(&mut g, &mut io::sink()).is_err());
        assert!(matches!(
            g.refused.borrow().clone(),
            Some(Refusal::DiskFull { .. })
        ));
    }
}
