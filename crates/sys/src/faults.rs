//! Named fault points for crash tests ("kill -9 at every step", issue 20).
//!
//! A fault point marks a step where a process may die and must leave
//! nothing behind: `faults::point("create.record-written")`. It is inert
//! unless the environment variable `BERTH_FAULT_POINT` names it; then the
//! process appends `<pid> <point>\n` to the file `BERTH_FAULT_FILE` (or
//! says so on stderr) and stops itself with SIGSTOP, so a test can
//! `kill -9` it exactly there (or `kill -CONT` it to let it go on).
//! `BERTH_FAULT_POINT=NAME@N` stops at the N-th time the point is reached
//! in the process (counted per process: a forked child counts on from its
//! parent's count). The environment is read once per process; an unset
//! variable costs one atomic load per point.
//!
//! Every point is listed in docs/architecture.md ("Crash points").
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The variable naming the point to stop at (`NAME` or `NAME@N`).
pub const POINT_VAR: &str = "BERTH_FAULT_POINT";
/// The variable naming the file the stopped process announces itself in.
pub const FILE_VAR: &str = "BERTH_FAULT_FILE";

struct Armed {
    point: String,
    nth: u32,
    file: Option<std::path::PathBuf>,
    hits: AtomicU32,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var(POINT_VAR).ok().filter(|v| !v.is_empty())?;
            let (point, nth) = match v.rsplit_once('@') {
                Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1).max(1)),
                None => (v, 1),
            };
            Some(Armed {
                point,
                nth,
                file: std::env::var_os(FILE_VAR).map(Into::into),
                hits: AtomicU32::new(0),
            })
        })
        .as_ref()
}

/// A named step at which a crash test may stop (and kill) this process.
/// Does nothing unless `BERTH_FAULT_POINT` names `name`.
#[inline]
pub fn point(name: &str) {
    if let Some(a) = armed() {
        if a.point == name && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.nth {
            stop_here(a);
        }
    }
}

#[cold]
fn stop_here(a: &Armed) {
    let line = format!("{} {}\n", std::process::id(), a.point);
    let announced = a.file.as_ref().is_some_and(|f| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
            // One write of a short line with O_APPEND: never interleaved.
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .is_ok()
    });
    if !announced {
        let _ = writeln!(
            std::io::stderr(),
            "berth: fault point {} reached (pid {}): stopped; kill -9 or kill -CONT it",
            a.point,
            std::process::id()
        );
    }
    // All of the process's threads stop until SIGCONT (or die by SIGKILL).
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}
