//! `top` as dockerd answers it: the host's `ps` (default `-ef`), its lines
//! kept for the container's processes (moby `daemon/top_unix.go`).
use std::process::Command;

use crate::container::Container;
use crate::error::{EngineError, Result};

/// `ps`'s header split in columns, and one row per process of the
/// container (the last column keeps its spaces: the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    /// The header's column names.
    pub titles: Vec<String>,
    /// One row per process, as many fields as titles.
    pub processes: Vec<Vec<String>>,
}

/// Keep the lines of `ps` output whose PID column is one of `pids`.
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::Ps("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = l.split_whitespace().collect();
        let Some(pid) = fields.get(col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let n = titles.len().max(1) - 1;
        let mut row: Vec<String> = fields.iter().take(n).map(|f| f.to_string()).collect();
        row.push(fields.get(n..).map(|r| r.join(" ")).unwrap_or_default());
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

impl crate::Engine {
    /// `top CONTAINER [ps OPTIONS]`: the host's `ps` with `ps_args`
    /// (split at spaces, `-ef` when empty), filtered to the container's
    /// processes.
    pub fn top(&self, c: &Container, ps_args: &str) -> Result<Top> {
        let pids = self.container_pids(c)?;
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split(' ').filter(|a| !a.is_empty()).collect()
        };
        let out = Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| EngineError::io("running ps (install procps)", e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(EngineError::Ps(format!(
                "ps: {}",
                err.lines().next().unwrap_or("failed")
            )));
        }
        let top = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)?;
        self.emit_container(c, "top", &[]);
        Ok(top)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ps_lines_of_the_container_only() {
        let out = "UID   PID  PPID  C STIME TTY TIME     CMD\n\
                   root    1     0  0 08:00 ?   00:00:01 /sbin/init splash\n\
                   root  9468 9449  0 08:06 ?   00:00:00 sleep 1000\n";
        let top = super::parse_ps(out, &[9468]).unwrap();
        assert_eq!(
            top.titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(
            top.processes,
            vec![vec![
                "root",
                "9468",
                "9449",
                "0",
                "08:06",
                "?",
                "00:00:00",
                "sleep 1000"
            ]]
        );
        let e = super::parse_ps("COMMAND\nsleep\n", &[1]).unwrap_err();
        assert!(e
            .to_string()
            .contains("Couldn't find PID field in ps output"));
    }
}
