//! Unpack throughput, a benchmark (not a test: it asserts nothing). With
//! no tar given it unpacks a small one made here; for a real figure, point
//! it at a large tar:
//!
//! ```text
//! tar -C /usr -cf /tmp/bench.tar lib/python3 lib/python3.11 lib/node_modules
//! LAYER_BENCH_TAR=/tmp/bench.tar LAYER_BENCH_DIR=/dev/shm \
//!   cargo run --release -p store --example layer_bench
//! ```
//!
//! The tar is read into memory first, so the figure is the unpacker's
//! (decompression, hashing, tar parsing, file creation), not the source
//! disk's. `LAYER_BENCH_DIR` picks the filesystem to unpack on (e.g.
//! `/dev/shm` to see the unpacker without ext4's inode allocation, which
//! dominates on a disk that just deleted the previous round's tree);
//! `LAYER_BENCH_ROUNDS` the number of rounds (best one reported).
use std::time::Instant;

/// A tar of 1000 files of 1-16 KiB in 50 directories.
fn synthetic() -> (Vec<u8>, usize) {
    let mut b = tar::Builder::new(Vec::new());
    let mut entries = 0;
    let mut seed = 0x1234_5678_u64;
    for d in 0..50 {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, format!("dir{d}/"), &[][..]).unwrap();
        entries += 1;
        for f in 0..20 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let len = 1024 + (seed >> 33) as usize % (15 * 1024);
            let data: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(len as u64);
            b.append_data(&mut h, format!("dir{d}/file{f}"), &data[..])
                .unwrap();
            entries += 1;
        }
    }
    (b.into_inner().unwrap(), entries)
}

fn count_entries(path: &str) -> usize {
    std::process::Command::new("tar")
        .arg("-tf")
        .arg(path)
        .output()
        .map(|o| o.stdout.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

fn main() {
    let (name, data, entries, rounds) = match std::env::var("LAYER_BENCH_TAR") {
        Ok(path) => {
            let data = std::fs::read(&path).unwrap();
            let entries = count_entries(&path);
            (path, data, entries, 3)
        }
        Err(_) => {
            let (data, entries) = synthetic();
            ("synthetic tar".to_string(), data, entries, 1)
        }
    };
    let rounds: usize = std::env::var("LAYER_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(rounds);
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
    println!(
        "{name}: {} input bytes, {} file bytes, {entries} entries, best of {rounds}: {:.3} s, \
         {:.0} MB/s (file bytes), {:.0} entries/s, diff-id {}",
        data.len(),
        u.size,
        best,
        u.size as f64 / best / 1e6,
        entries as f64 / best,
        u.diff_id
    );
}
