//! `top`.

use clap::Args;
use engine::Engine;

use crate::Failure;

/// `top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Container.
    container: String,
    /// Options for the host's `ps` (e.g. `aux`, `-o pid,rss,args`); its
    /// lines are kept for the container's processes only.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// Run the host's `ps` with `opts` and keep the header and the lines whose
/// PID column is one of `pids` (Docker's `top CONTAINER [ps OPTIONS]`).
fn ps_filtered(opts: &[String], pids: &[i32]) -> Result<String, Failure> {
    let out = std::process::Command::new("ps")
        .args(opts)
        .output()
        .map_err(|e| Failure::msg(125, format!("running ps: {e} (install procps)")))?;
    if !out.status.success() {
        return Err(Failure::msg(
            125,
            format!(
                "ps {}: {}",
                opts.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| {
            Failure::msg(
                125,
                "couldn't find the PID field in the ps output: add pid to the -o fields",
            )
        })?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[2] == uid.to_string())
                .map(|f| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// `top`.
pub fn top(engine: &Engine, a: TopArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    let pids = engine.container_pids(&c)?;
    print_processes(&pids, &a.ps_options)
}

/// Print the processes `pids` as `top` does: the host's `ps` with
/// `ps_options` kept to them, or docker's default columns (`pod top`
/// prints a pod's processes the same way).
pub(crate) fn print_processes(pids: &[i32], ps_options: &[String]) -> Result<(), Failure> {
    if !ps_options.is_empty() {
        print!("{}", ps_filtered(ps_options, pids)?);
        return Ok(());
    }
    let mut lines = vec!["UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD".to_string()];
    for &pid in pids {
        if let Some(r) = engine::container::ops::process_row(pid) {
            lines.push(format!(
                "{}\t{}\t{}\t0\t{}\t{}\t{}\t{}",
                user_name(r.uid),
                r.pid,
                r.ppid,
                r.stime,
                r.tty,
                r.time,
                r.cmd
            ));
        }
    }
    let widths = lines.iter().fold(vec![0usize; 8], |mut w, l| {
        for (i, col) in l.split('\t').enumerate().take(7) {
            w[i] = w[i].max(col.len());
        }
        w
    });
    for l in lines {
        let cols: Vec<&str> = l.split('\t').collect();
        let mut out = String::new();
        for (i, col) in cols.iter().enumerate() {
            if i < 7 {
                out.push_str(&format!("{col:<w$}   ", w = widths[i]));
            } else {
                out.push_str(col);
            }
        }
        println!("{}", out.trim_end());
    }
    Ok(())
}
