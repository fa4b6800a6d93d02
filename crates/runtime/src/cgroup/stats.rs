//! A cgroup's resource use, read from cgroupfs as runc's and containerd's
//! stats readers read it, with the counters dockerd reports in `GET
//! /containers/{id}/stats` (`cpu_stats`, `memory_stats`, `blkio_stats`).
use std::collections::BTreeMap;
use std::path::Path;

use super::{Cgroup, CgroupError};

/// Resource usage of a cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (0 = none).
    pub memory_limit: u64,
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Processes.
    pub pids: u64,
    /// Page cache that can be dropped (`inactive_file`): Docker leaves it
    /// out of the usage it shows.
    pub memory_inactive_file: u64,
    /// Bytes read from block devices.
    pub blk_read: u64,
    /// Bytes written to block devices.
    pub blk_write: u64,
    /// CPU time per CPU, nanoseconds (v1 `cpuacct.usage_percpu`: every
    /// possible CPU; none on v2).
    pub cpu_percpu_ns: Vec<u64>,
    /// CPU time in user mode, nanoseconds (v1 counts it in clock ticks).
    pub cpu_user_ns: u64,
    /// CPU time in kernel mode, nanoseconds.
    pub cpu_system_ns: u64,
    /// CFS bandwidth throttling (`cpu.stat`).
    pub throttling: Throttling,
    /// The highest memory use seen (v1 `memory.max_usage_in_bytes`).
    pub memory_max_usage: Option<u64>,
    /// How often the memory limit was hit (v1 `memory.failcnt`).
    pub memory_failcnt: u64,
    /// `memory.stat`: on v1 the counters containerd (hence dockerd)
    /// reports, 0 for one the kernel lacks; on v2 every line.
    pub memory_stat: BTreeMap<String, u64>,
    /// Block I/O by device.
    pub blkio: BlkioStats,
}

/// CFS bandwidth throttling counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    pub throttled_time_ns: u64,
}

/// One device's counter: `MAJOR:MINOR [OP] VALUE` (op empty for counters
/// without one, such as `sectors_recursive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    /// The device's major number.
    pub major: u64,
    /// Its minor number.
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total` (v1), `read`,
    /// `write` (v2), or empty.
    pub op: String,
    /// The count.
    pub value: u64,
}

/// Block I/O counters under dockerd's names; `None` where the hierarchy
/// has no such file (dockerd then answers `null`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStats {
    /// Bytes moved.
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    /// I/O operations.
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    /// Operations queued.
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    /// Time spent servicing, ns.
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    /// Time spent waiting, ns.
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    /// Operations merged.
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    /// Disk time, ms.
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    /// Sectors moved.
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

/// The v1 `memory.stat` counters containerd's cgroup v1 metrics carry,
/// which are the keys of dockerd's `memory_stats.stats`.
const V1_MEMORY_STAT: &[&str] = &[
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
];

/// `key value` lines of a cgroup stat file.
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Every `key value` line of a stat file.
fn stat_map(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A v1 blkio file: `MAJOR:MINOR OP VALUE` or `MAJOR:MINOR VALUE` lines;
/// the `Total VALUE` line is left out (as runc does).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] => (*dev, "", *value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 `io.stat` (`MAJOR:MINOR rbytes=N wbytes=N rios=N …`) as dockerd
/// turns it into `io_service_bytes_recursive`: a `read` and a `write`
/// entry per device.
fn io_stat_entries(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        let (mut r, mut w) = (0, 0);
        for kv in f {
            if let Some(v) = kv.strip_prefix("rbytes=") {
                r = v.parse().unwrap_or(0);
            } else if let Some(v) = kv.strip_prefix("wbytes=") {
                w = v.parse().unwrap_or(0);
            }
        }
        for (op, value) in [("read", r), ("write", w)] {
            out.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    out
}

/// Bytes read and written in `io_service_bytes_recursive`.
fn read_write(entries: &[BlkioEntry]) -> (u64, u64) {
    let mut rw = (0, 0);
    for e in entries {
        if e.op.eq_ignore_ascii_case("read") {
            rw.0 += e.value;
        } else if e.op.eq_ignore_ascii_case("write") {
            rw.1 += e.value;
        }
    }
    rw
}

impl Cgroup {
    /// Current usage.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        if self.v2 {
            return Ok(self.stats_v2());
        }
        let text = |d: Option<&Path>, f: &str| -> Option<String> {
            d.and_then(|d| std::fs::read_to_string(d.join(f)).ok())
        };
        let read = |d: Option<&Path>, f: &str| -> u64 {
            text(d, f)
                .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
                .unwrap_or(0)
        };
        let mem = self.dir_of("memory");
        let acct = self.dir_of("cpuacct");
        let ns_per_tick = 1_000_000_000 / sys::process::clock_ticks().max(1);
        let cpuacct_stat = text(acct, "cpuacct.stat").unwrap_or_default();
        let cpu_stat = text(self.dir_of("cpu"), "cpu.stat").unwrap_or_default();
        let memory_stat = text(mem, "memory.stat").unwrap_or_default();
        let all = stat_map(&memory_stat);
        let blkio = self.blkio_v1();
        let (blk_read, blk_write) =
            read_write(blkio.io_service_bytes_recursive.as_deref().unwrap_or(&[]));
        Ok(CgroupStats {
            memory_usage: read(mem, "memory.usage_in_bytes"),
            memory_limit: read(mem, "memory.limit_in_bytes"),
            cpu_usage_ns: read(acct, "cpuacct.usage"),
            pids: read(self.dir_of("pids"), "pids.current"),
            memory_inactive_file: stat_value(&memory_stat, "total_inactive_file").unwrap_or(0),
            blk_read,
            blk_write,
            cpu_percpu_ns: text(acct, "cpuacct.usage_percpu")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect(),
            cpu_user_ns: stat_value(&cpuacct_stat, "user").unwrap_or(0) * ns_per_tick,
            cpu_system_ns: stat_value(&cpuacct_stat, "system").unwrap_or(0) * ns_per_tick,
            throttling: Throttling {
                periods: stat_value(&cpu_stat, "nr_periods").unwrap_or(0),
                throttled_periods: stat_value(&cpu_stat, "nr_throttled").unwrap_or(0),
                throttled_time_ns: stat_value(&cpu_stat, "throttled_time").unwrap_or(0),
            },
            memory_max_usage: mem.map(|_| read(mem, "memory.max_usage_in_bytes")),
            memory_failcnt: read(mem, "memory.failcnt"),
            memory_stat: V1_MEMORY_STAT
                .iter()
                .map(|k| (k.to_string(), all.get(*k).copied().unwrap_or(0)))
                .collect(),
            blkio,
        })
    }

    /// v1 block I/O: the CFQ (or BFQ) scheduler's files where the kernel
    /// has them, else the throttle policy's two, as runc reads them.
    fn blkio_v1(&self) -> BlkioStats {
        let Some(d) = self.dir_of("blkio") else {
            return BlkioStats::default();
        };
        let list = |f: &str| -> Vec<BlkioEntry> {
            std::fs::read_to_string(d.join(f))
                .map(|t| blkio_entries(&t))
                .unwrap_or_default()
        };
        for prefix in ["blkio.", "blkio.bfq."] {
            if d.join(format!("{prefix}io_serviced_recursive")).exists() {
                let l = |name: &str| Some(list(&format!("{prefix}{name}")));
                return BlkioStats {
                    io_service_bytes_recursive: l("io_service_bytes_recursive"),
                    io_serviced_recursive: l("io_serviced_recursive"),
                    io_queue_recursive: l("io_queued_recursive"),
                    io_service_time_recursive: l("io_service_time_recursive"),
                    io_wait_time_recursive: l("io_wait_time_recursive"),
                    io_merged_recursive: l("io_merged_recursive"),
                    io_time_recursive: l("time_recursive"),
                    sectors_recursive: l("sectors_recursive"),
                };
            }
        }
        BlkioStats {
            io_service_bytes_recursive: Some(list("blkio.throttle.io_service_bytes_recursive")),
            io_serviced_recursive: Some(list("blkio.throttle.io_serviced_recursive")),
            io_queue_recursive: Some(Vec::new()),
            io_service_time_recursive: Some(Vec::new()),
            io_wait_time_recursive: Some(Vec::new()),
            io_merged_recursive: Some(Vec::new()),
            io_time_recursive: Some(Vec::new()),
            sectors_recursive: Some(Vec::new()),
        }
    }

    fn stats_v2(&self) -> CgroupStats {
        let d = self.dir_of("unified");
        let text = |f: &str| -> String {
            d.and_then(|d| std::fs::read_to_string(d.join(f)).ok())
                .unwrap_or_default()
        };
        let read = |f: &str| -> u64 {
            text(f)
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let cpu = text("cpu.stat");
        let usec = |k: &str| stat_value(&cpu, k).unwrap_or(0) * 1000;
        let memory_stat = stat_map(&text("memory.stat"));
        let io = io_stat_entries(&text("io.stat"));
        let (blk_read, blk_write) = read_write(&io);
        CgroupStats {
            memory_usage: read("memory.current"),
            memory_limit: read("memory.max"),
            cpu_usage_ns: usec("usage_usec"),
            pids: read("pids.current"),
            memory_inactive_file: memory_stat.get("inactive_file").copied().unwrap_or(0),
            blk_read,
            blk_write,
            cpu_percpu_ns: Vec::new(),
            cpu_user_ns: usec("user_usec"),
            cpu_system_ns: usec("system_usec"),
            throttling: Throttling {
                periods: stat_value(&cpu, "nr_periods").unwrap_or(0),
                throttled_periods: stat_value(&cpu, "nr_throttled").unwrap_or(0),
                throttled_time_ns: usec("throttled_usec"),
            },
            memory_max_usage: None,
            memory_failcnt: 0,
            memory_stat,
            blkio: BlkioStats {
                io_service_bytes_recursive: Some(io),
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_as_runc_reads_them() {
        let t = "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n";
        let e = blkio_entries(t);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert_eq!(read_write(&e), (4096, 8192));
        let sectors = blkio_entries("8:0 24\n");
        assert_eq!(sectors[0].op, "");
        assert_eq!(sectors[0].value, 24);
        assert!(blkio_entries("Total 0\n").is_empty());
    }

    #[test]
    fn io_stat_becomes_read_and_write_entries() {
        let e = io_stat_entries("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            e.iter()
                .map(|e| (e.op.as_str(), e.value))
                .collect::<Vec<_>>(),
            [("read", 100), ("write", 200)]
        );
    }

    #[test]
    fn a_v1_cgroup_dir_read_as_dockerd_reports_it() {
        let tmp = std::env::temp_dir().join(format!("berth-cgstats-{}", std::process::id()));
        let (cpu, mem, blk) = (tmp.join("cpu"), tmp.join("memory"), tmp.join("blkio"));
        for d in [&cpu, &mem, &blk] {
            std::fs::create_dir_all(d).unwrap();
        }
        let w = |d: &Path, f: &str, v: &str| std::fs::write(d.join(f), v).unwrap();
        w(&cpu, "cpuacct.usage", "300\n");
        w(&cpu, "cpuacct.usage_percpu", "100 200 \n");
        w(&cpu, "cpuacct.stat", "user 3\nsystem 1\n");
        w(
            &cpu,
            "cpu.stat",
            "nr_periods 5\nnr_throttled 2\nthrottled_time 77\n",
        );
        w(&mem, "memory.usage_in_bytes", "4096\n");
        w(&mem, "memory.max_usage_in_bytes", "8192\n");
        w(&mem, "memory.limit_in_bytes", "9223372036854771712\n");
        w(&mem, "memory.failcnt", "0\n");
        w(
            &mem,
            "memory.stat",
            "cache 0\nrss 4096\nshmem 0\ntotal_inactive_file 1024\n",
        );
        w(
            &blk,
            "blkio.throttle.io_service_bytes_recursive",
            "254:0 Read 1\n254:0 Write 2\nTotal 3\n",
        );
        let cg = Cgroup {
            dirs: vec![
                (vec!["cpu".into(), "cpuacct".into()], cpu.clone()),
                (vec!["memory".into()], mem.clone()),
                (vec!["blkio".into()], blk.clone()),
            ],
            v2: false,
        };
        let s = cg.stats().unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
        assert_eq!(s.cpu_usage_ns, 300);
        assert_eq!(s.cpu_percpu_ns, [100, 200]);
        let tick = 1_000_000_000 / sys::process::clock_ticks();
        assert_eq!((s.cpu_user_ns, s.cpu_system_ns), (3 * tick, tick));
        assert_eq!(
            s.throttling,
            Throttling {
                periods: 5,
                throttled_periods: 2,
                throttled_time_ns: 77
            }
        );
        assert_eq!(s.memory_max_usage, Some(8192));
        // dockerd's 32 keys, absent ones 0, others (shmem) left out.
        assert_eq!(s.memory_stat.len(), 32);
        assert_eq!(s.memory_stat["rss"], 4096);
        assert_eq!(s.memory_stat["total_inactive_file"], 1024);
        assert_eq!(s.memory_stat["hierarchical_memsw_limit"], 0);
        assert!(!s.memory_stat.contains_key("shmem"));
        assert_eq!(s.memory_inactive_file, 1024);
        assert_eq!((s.blk_read, s.blk_write), (1, 2));
        assert_eq!(
            s.blkio.io_service_bytes_recursive.as_ref().unwrap().len(),
            2
        );
        assert_eq!(s.blkio.io_serviced_recursive, Some(Vec::new()));
        assert_eq!(s.blkio.sectors_recursive, Some(Vec::new()));
    }
}
