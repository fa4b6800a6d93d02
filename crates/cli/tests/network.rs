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

/// The kernel removes a stopped container's veths with its network
/// namespace, shortly after: wait for that (up to 10 s).
fn links_gone(prefixes: &[&str]) -> bool {
    for _ in 0..200 {
        if links(prefixes).is_empty() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
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
    assert!(links_gone(&[&format!("vb{}", &web_id[..6])]));
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
    let prefixes: Vec<String> = ids.iter().map(|i| format!("vb{}", &i[..6])).collect();
    let p: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    assert_eq!(links(&p).len(), 20);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    b.ok(&args);
    assert!(container_ips(&b, "many").is_empty());
    assert!(links_gone(&p), "veths stayed: {:?}", links(&p));
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

/// GET `path` from `addr` (HTTP/1.0), retrying while the server starts.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.") {
                return out;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no HTTP answer from {addr}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

#[test]
fn published_ports_answer_on_localhost_and_from_another_host() {
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.251.7.0/24", "pubnet"]);
    let local = free_port();
    let all = free_port();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "pubnet",
            "-p",
            &format!("127.0.0.1:{local}:8080"),
            "-p",
            &format!("{all}:8080"),
            "-p",
            "8081",
            IMAGE,
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/etc",
        ])
        .trim()
        .to_string();
    // From the host itself, on 127.0.0.1.
    let page = http_get(&format!("127.0.0.1:{local}"), "/hostname");
    assert!(page.contains(&id[..12]), "{page}");
    let page = http_get(&format!("127.0.0.1:{all}"), "/hostname");
    assert!(page.contains(&id[..12]), "{page}");
    // `port` shows them; -p 8081 got a random host port.
    let ports = b.ok(&["port", "web"]);
    assert!(
        ports.contains(&format!("8080/tcp -> 127.0.0.1:{local}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("8080/tcp -> 0.0.0.0:{all}")),
        "{ports}"
    );
    let random = b.ok(&["port", "web", "8081"]);
    let rport: u16 = random.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(rport > 0);
    let o = b.run(&["port", "web", "9999"]);
    assert_eq!(code(&o), 1);

    // From another host: a namespace of the test's own, linked to the host
    // by a veth pair of its own (forwarding enabled on that link only).
    let tag = format!("{:x}", std::process::id() & 0xfff);
    let (hv, nv) = (format!("tph{tag}"), format!("tpn{tag}"));
    let mut ns = Command::new("unshare")
        .args(["-n", "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let pid = ns.id();
    let setup = sh(&format!(
        "ip link add {hv} type veth peer name {nv} netns /proc/{pid}/ns/net && \
         ip addr add 10.252.7.1/30 dev {hv} && ip link set {hv} up && \
         echo 1 > /proc/sys/net/ipv4/conf/{hv}/forwarding && \
         nsenter -t {pid} -n sh -c 'ip addr add 10.252.7.2/30 dev {nv} && ip link set {nv} up && ip link set lo up && ip route add default via 10.252.7.1'"
    ));
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let remote = sh(&format!(
        "nsenter -t {pid} -n busybox wget -q -O - http://10.252.7.1:{all}/hostname"
    ));
    // The 127.0.0.1-only port does not answer on other addresses.
    let other = sh(&format!(
        "nsenter -t {pid} -n busybox wget -q -O - http://10.252.7.1:{local}/hostname 2>&1"
    ));
    let _ = sh(&format!("ip link del {hv}"));
    let _ = ns.kill();
    let _ = ns.wait();
    assert!(
        String::from_utf8_lossy(&remote.stdout).contains(&id[..12]),
        "from another host: {}{}",
        String::from_utf8_lossy(&remote.stdout),
        String::from_utf8_lossy(&remote.stderr)
    );
    assert!(!String::from_utf8_lossy(&other.stdout).contains(&id[..12]));
    b.ok(&["rm", "-f", "web"]);
    let rules = sh("nft list table ip berth 2>/dev/null");
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains(&id),
        "rules stayed"
    );
    // No network: publishing is refused clearly.
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("need a bridge network"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "pubnet",
        "-p",
        "80/sctp",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
}

#[test]
fn containers_resolve_each_other_by_name_on_a_user_network() {
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.251.8.0/24", "names"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--hostname",
        "dbhost",
        "--network",
        "names",
        IMAGE,
        "sleep",
        "60",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "names",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup db; nslookup dbhost",
    ]);
    assert!(out.contains("nameserver 10.251.8.1"), "{out}");
    assert_eq!(out.matches("Address: 10.251.8.2").count(), 2, "{out}");
    // A container started later is found too, by its name.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "names",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let out = b.ok(&[
        "run", "--rm", "--network", "names", IMAGE, "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://web:8080/hostname && break; sleep 0.2; done",
    ]);
    assert!(!out.trim().is_empty(), "{out}");
    // A stopped container's name is gone.
    b.ok(&["rm", "-f", "db"]);
    let o = b.run(&["run", "--rm", "--network", "names", IMAGE, "nslookup", "db"]);
    assert!(!stdout(&o).contains("10.251.8.2"), "{}", stdout(&o));
    // Containers on another network do not see them.
    b.ok(&["network", "create", "--subnet", "10.251.9.0/24", "other"]);
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "other",
        IMAGE,
        "nslookup",
        "web",
    ]);
    assert!(!stdout(&o).contains("10.251.8."), "{}", stdout(&o));
}

#[test]
fn network_options_ip_mac_alias_dns_and_extra_hosts() {
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.251.10.0/24", "opts"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "opts",
        "--network-alias",
        "database",
        "--ip",
        "10.251.10.50",
        "--mac-address",
        "02:aa:bb:cc:dd:ee",
        IMAGE,
        "sleep",
        "60",
    ]);
    let inside = b.ok(&[
        "exec",
        "db",
        "sh",
        "-c",
        "ip link show eth0; ip -4 addr show eth0; cat /etc/hosts",
    ]);
    assert!(inside.contains("02:aa:bb:cc:dd:ee"), "{inside}");
    assert!(inside.contains("10.251.10.50/24"), "{inside}");
    assert!(inside.contains("10.251.10.50\t"), "{inside}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "opts",
        "--dns-search",
        "example.test",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "static:192.0.2.7",
        IMAGE,
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; nslookup database.",
    ]);
    assert!(out.contains("search example.test"), "{out}");
    assert!(
        out.contains("10.251.10.1\tgw") && out.contains("192.0.2.7\tstatic"),
        "{out}"
    );
    assert!(out.contains("Address: 10.251.10.50"), "{out}");
    // The address is taken: a second container cannot have it.
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "opts",
        "--ip",
        "10.251.10.50",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    for (flag, value) in [
        ("--ip", "10.9.9.9"),
        ("--mac-address", "zz"),
        ("--add-host", "nocolon"),
        ("--dns", "x"),
    ] {
        let o = b.run(&[
            "run",
            "--rm",
            "--network",
            "opts",
            flag,
            value,
            IMAGE,
            "true",
        ]);
        assert_eq!(code(&o), 125, "{flag} {value}");
    }
}
