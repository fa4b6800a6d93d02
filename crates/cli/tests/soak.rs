//! Soak (issue 20): parallel workers, each doing rounds of `run -d` /
//! `exec` / `stop` / `rm -f` with restart policies, healthchecks,
//! published ports and volumes mixed, all at once on one state root.
//! Afterwards no container is left, nothing of theirs is on the host
//! (processes, cgroups, veths, rules, mounts) and the census says the same
//! as before the soak. The short version runs here (`SOAK_WORKERS`,
//! default 4, × `SOAK_ROUNDS`, default 8); `bench/soak.sh` is the long one.
mod common;

use common::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `system check --quick`'s summary of a clean root ("No problems found:
/// 1 image, … on the host 0 processes, …"), asserted clean.
fn census(b: &Berth) -> String {
    let o = b.run(&["system", "check", "--quick"]);
    assert!(
        o.status.success(),
        "berth system check:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

/// One round of worker `w`: a container of one of four kinds, used and
/// removed. Returns its id.
fn round(b: &Berth, w: usize, r: usize) -> String {
    let name = format!("soak-{w}-{r}");
    let vol = format!("soak{w}:/data");
    let kind = (w + r) % 4;
    let mut args: Vec<&str> = vec!["run", "-d", "--name", &name];
    match kind {
        // A restart policy, a published port and a named volume.
        0 => args.extend([
            "--restart",
            "always",
            "-p",
            "127.0.0.1::80",
            "-v",
            &vol,
            IMAGE,
            "sh",
            "-c",
            "echo up > /data/f; exec sleep 1000",
        ]),
        // A healthcheck probing every second, and on-failure.
        1 => args.extend([
            "--restart",
            "on-failure:3",
            "--health-cmd",
            "test -e /proc/1",
            "--health-interval",
            "1s",
            IMAGE,
            "sleep",
            "1000",
        ]),
        // An anonymous volume, two published ports, unless-stopped.
        2 => args.extend([
            "--restart",
            "unless-stopped",
            "-v",
            "/anon",
            "-p",
            "127.0.0.1::8080",
            "-p",
            "127.0.0.1::53/udp",
            IMAGE,
            "sleep",
            "1000",
        ]),
        // A restart loop: exits at once, restarted with back-off, removed
        // whatever it is doing then.
        _ => args.extend([
            "--restart",
            "always",
            "-p",
            "127.0.0.1::80",
            "--health-cmd",
            "true",
            IMAGE,
            "sh",
            "-c",
            "exit 1",
        ]),
    }
    let o = b.run(&args);
    assert!(o.status.success(), "{name}: run -d failed: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    if kind != 3 {
        let o = b.run(&["exec", &name, "echo", "ok"]);
        assert_eq!(stdout(&o), "ok\n", "{name}: exec: {}", stderr(&o));
        if r.is_multiple_of(2) {
            b.ok(&["stop", "-t", "1", &name]);
        }
    }
    b.ok(&["rm", "-f", "-v", &name]);
    id
}

#[test]
#[ignore = "needs root"]
fn soak_parallel_run_exec_stop_rm() {
    let b = Berth::new();
    let workers = env_or("SOAK_WORKERS", 4);
    let rounds = env_or("SOAK_ROUNDS", 8);
    // The default bridge exists from the first use on: make it before the
    // census is taken (`rm -f` waits for the monitor; a `run --rm`'s may
    // still be removing its container when the CLI returns).
    b.ok(&[
        "run",
        "-d",
        "--name",
        "warm",
        "-p",
        "127.0.0.1::80",
        IMAGE,
        "sleep",
        "100",
    ]);
    b.ok(&["rm", "-f", "warm"]);
    let before = census(&b);
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let b = &b;
                s.spawn(move || (0..rounds).map(|r| round(b, w, r)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a soak worker failed"))
            .collect()
    });
    assert_eq!(ids.len(), workers * rounds);
    assert_eq!(
        b.ok(&["ps", "-a", "-q"]),
        "",
        "containers left after the soak"
    );
    for w in 0..workers {
        let v = format!("soak{w}");
        if b.run(&["volume", "inspect", &v]).status.success() {
            b.ok(&["volume", "rm", &v]);
        }
    }
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "", "anonymous volumes left");
    let left = leftovers(&b, &ids);
    assert!(left.is_empty(), "left on the host: {left:#?}");
    assert_eq!(census(&b), before, "the census differs from the start");
    assert_census_clean(&b);
}
