//! User-defined bridge networks (root): containers reach each other,
//! addresses are unique under concurrency and freed, teardown leaves no
//! link behind. Traffic stays inside the test's own bridges.
mod common;

use std::process::Command;

use common::*;

/// Links of the host whose names start with one of `prefixes`.
fn links(prefixes: &[&str]) -> Vec<String> {
    let out = Command::new("ip").args(["-br", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
        .collect()
}

fn container_ips(b: &Berth, net: &str) -> Vec<String> {
    let out = b.ok(&[
        "network",
        "inspect",
        "--format",
        "{{json .Containers}}",
        net,
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v.as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn containers_on_a_network_reach_each_other_and_leave_nothing_behind() {
    let b = Berth::new();
    let id = b.ok(&["network", "create", "--subnet", "10.251.3.0/24", "appnet"]);
    let bridge = format!("br-{}", &id.trim()[..12]);
    let ls = b.ok(&["network", "ls"]);
    assert!(ls.contains("appnet") && ls.contains("bridge"), "{ls}");
    let web = b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "appnet",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let web_id = web.trim().to_string();
    let ips = container_ips(&b, "appnet");
    assert_eq!(ips, ["10.251.3.2/24"]);
    let out = b.ok(&[
        "run", "--rm", "--network", "appnet", IMAGE, "sh", "-c",
        "ip route | grep default; for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://10.251.3.2:8080/hostname && break; sleep 0.2; done",
    ]);
    assert!(out.contains("default via 10.251.3.1"), "{out}");
    assert!(out.contains(&web_id[..12]), "{out}");
    // In use: refused with a clear message.
    let o = b.run(&["network", "rm", "appnet"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("active endpoints"), "{}", stderr(&o));
    b.ok(&["rm", "-f", "web"]);
    assert!(container_ips(&b, "appnet").is_empty());
    assert!(links(&[&format!("vb{}", &web_id[..10])]).is_empty());
    b.ok(&["network", "rm", "appnet"]);
    assert!(links(&[&bridge]).is_empty(), "the bridge stayed");
    let o = b.run(&["network", "inspect", "appnet"]);
    assert_ne!(code(&o), 0);
}

#[test]
fn concurrent_runs_get_distinct_addresses_which_are_freed() {
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.251.4.0/24", "many"]);
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| b.ok(&["run", "-d", "--network", "many", IMAGE, "sleep", "60"])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().trim().to_string())
            .collect()
    });
    let mut ips = container_ips(&b, "many");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    let prefixes: Vec<String> = ids.iter().map(|i| format!("vb{}", &i[..10])).collect();
    let p: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    assert_eq!(links(&p).len(), 20);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    b.ok(&args);
    assert!(container_ips(&b, "many").is_empty());
    assert!(links(&p).is_empty(), "veths stayed: {:?}", links(&p));
    b.ok(&["network", "rm", "many"]);
}

#[test]
fn internal_networks_have_no_default_route_and_failed_runs_free_their_address() {
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.251.5.0/24",
        "inner",
    ]);
    let out = b.ok(&["run", "--rm", "--network", "inner", IMAGE, "ip", "route"]);
    assert!(!out.contains("default"), "{out}");
    assert!(out.contains("10.251.5.0/24"), "{out}");
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "inner",
        IMAGE,
        "no-such-command",
    ]);
    assert_eq!(code(&o), 127);
    assert!(container_ips(&b, "inner").is_empty());
    b.ok(&["network", "rm", "inner"]);
}

#[test]
fn bad_network_requests_are_refused_clearly() {
    let b = Berth::new();
    let o = b.run(&["network", "create", "--subnet", "10.251.6.1/24", "x"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("host bits"), "{}", stderr(&o));
    let o = b.run(&["network", "create", "bad/name"]);
    assert_eq!(code(&o), 125);
    b.ok(&["network", "create", "--subnet", "10.251.6.0/24", "first"]);
    let o = b.run(&["network", "create", "--subnet", "10.251.6.128/25", "second"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    let o = b.run(&["network", "create", "first"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "--network", "nope", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("network \"nope\" not found"),
        "{}",
        stderr(&o)
    );
    b.ok(&["network", "rm", "first"]);
    let o = b.run(&["network", "rm", "first"]);
    assert_ne!(code(&o), 0);
    b.ok(&["network", "rm", "-f", "first"]);
}
