//! Unpack throughput on a real tar (not run by default: it needs a large
//! input and measures time). Run it in release mode:
//!
//! ```text
//! tar -C /usr -cf /tmp/bench.tar lib/python3 lib/python3.11 lib/node_modules
//! LAYER_BENCH_TAR=/tmp/bench.tar CARGO_TARGET_DIR=target-layer \
//!   cargo test --release -p store --test layer_bench -- --ignored --nocapture
//! ```
//!
//! The tar is read into memory first, so the figure is the unpacker's
//! (decompression, hashing, tar parsing, file creation), not the source
//! disk's. `LAYER_BENCH_DIR` picks the filesystem to unpack on (e.g.
//! `/dev/shm` to see the unpacker without ext4's inode allocation, which
//! dominates on a disk that just deleted the previous round's tree).
use std::time::Instant;

#[test]
#[ignore = "benchmark: needs LAYER_BENCH_TAR=<path to a large tar or tar.gz>"]
fn unpack_throughput() {
    let path = std::env::var("LAYER_BENCH_TAR").expect("set LAYER_BENCH_TAR to a tar file");
    let data = std::fs::read(&path).unwrap();
    let rounds: usize = std::env::var("LAYER_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let tmp = match std::env::var_os("LAYER_BENCH_DIR") {
            Some(dir) => tempfile::tempdir_in(dir).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let dest = tmp.path().join("layer");
        std::fs::create_dir(&dest).unwrap();
        let start = Instant::now();
        let u = store::layer::unpack(&data[..], &dest).unwrap();
        best = best.min(start.elapsed().as_secs_f64());
        drop(tmp);
        last = Some(u);
    }
    let u = last.unwrap();
    let entries = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&path)
        .output()
        .map(|o| o.stdout.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0);
    println!(
        "{path}: {} input bytes, {} file bytes, {entries} entries, best of {rounds}: {:.3} s, \
         {:.0} MB/s (file bytes), {:.0} entries/s, diff-id {}",
        data.len(),
        u.size,
        best,
        u.size as f64 / best / 1e6,
        entries as f64 / best,
        u.diff_id
    );
}
