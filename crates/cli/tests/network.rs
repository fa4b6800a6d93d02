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
    let before = host_state();
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
    assert_census_clean(&b);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn concurrent_runs_get_distinct_addresses_which_are_freed() {
    let before = host_state();
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
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

/// Found by CI: two berth roots side by side (tests run in parallel; so
/// do a root and a rootless berth, or two data roots) both picked
/// 172.18.0.0/16, since a network's bridge was made only when its first
/// container started; the second network's names then went to the first
/// one's DNS responder. Now, as Docker, `network create` makes the bridge
/// with its gateway address, under a host-wide lock, and the pick skips
/// every address the host's interfaces hold.
#[test]
fn networks_of_roots_side_by_side_get_distinct_subnets() {
    let before = host_state();
    let roots = [Berth::empty(), Berth::empty(), Berth::empty()];
    let subnets: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = roots
            .iter()
            .flat_map(|b| {
                (0..2).map(move |i| {
                    s.spawn(move || {
                        let name = format!("side{i}");
                        b.ok(&["network", "create", &name]);
                        b.ok(&[
                            "network",
                            "inspect",
                            "--format",
                            "{{(index .IPAM.Config 0).Subnet}} br-{{printf \"%.12s\" .Id}}",
                            &name,
                        ])
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen: Vec<&str> = Vec::new();
    for line in &subnets {
        let (subnet, bridge) = line.trim().split_once(' ').unwrap();
        assert!(
            !seen.contains(&subnet),
            "{subnet} picked twice: {subnets:?}"
        );
        seen.push(subnet);
        // The bridge is there from `network create` on, with the gateway.
        let addr = text(&["ip", "-4", "-br", "addr", "show", "dev", bridge]);
        let gw = subnet.replace(".0/", ".1/");
        assert!(addr.contains(&gw), "{bridge}: {addr}");
    }
    let mut made = Footprint::default();
    for b in &roots {
        for i in 0..2 {
            b.ok(&["network", "rm", &format!("side{i}")]);
        }
        made.merge(Footprint::of(b));
    }
    drop(roots);
    assert_host_unchanged(&before, &made);
}

#[test]
fn internal_networks_route_through_their_gateway_and_failed_runs_free_their_address() {
    let before = host_state();
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.251.5.0/24",
        "inner",
    ]);
    // As Docker's: a default route through the internal network's gateway
    // (which forwards nothing; see outbound_traffic_is_masqueraded_...).
    let out = b.ok(&["run", "--rm", "--network", "inner", IMAGE, "ip", "route"]);
    assert!(out.contains("default via 10.251.5.1"), "{out}");
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
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn bad_network_requests_are_refused_clearly() {
    let before = host_state();
    let b = Berth::new();
    let o = b.run(&["network", "create", "--subnet", "10.251.6.1/24", "x"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("host bits"), "{}", stderr(&o));
    // dockerd 20.10 takes any name (recorded: `docker network create a/b`).
    b.ok(&["network", "create", "odd/name"]);
    b.ok(&["network", "rm", "odd/name"]);
    b.ok(&["network", "create", "--subnet", "10.251.6.0/24", "first"]);
    let o = b.run(&["network", "create", "--subnet", "10.251.6.128/25", "second"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    let o = b.run(&["network", "create", "first"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "--network", "nope", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("No such network: nope"),
        "{}",
        stderr(&o)
    );
    b.ok(&["network", "rm", "first"]);
    let o = b.run(&["network", "rm", "first"]);
    assert_ne!(code(&o), 0);
    b.ok(&["network", "rm", "-f", "first"]);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

/// A network namespace of the test's own acting as another host, linked to
/// the host by a veth pair of its own (`tph<n>`/`tpn<n>`, 10.252.N.0/30,
/// forwarding enabled on the host's end only). Removed on drop.
struct OtherHost {
    ns: std::process::Child,
    hv: String,
    host_ip: String,
    ip: String,
}

impl OtherHost {
    fn new(n: u8) -> OtherHost {
        let tag = format!("{:x}{n}", std::process::id() & 0xfff);
        let (hv, nv) = (format!("tph{tag}"), format!("tpn{tag}"));
        let ns = Command::new("unshare")
            .args(["-n", "sleep", "120"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let pid = ns.id();
        let (host_ip, ip) = (format!("10.252.{n}.1"), format!("10.252.{n}.2"));
        let setup = sh(&format!(
            "ip link add {hv} type veth peer name {nv} netns /proc/{pid}/ns/net && \
             ip addr add {host_ip}/30 dev {hv} && ip link set {hv} up && \
             echo 1 > /proc/sys/net/ipv4/conf/{hv}/forwarding && \
             nsenter -t {pid} -n sh -c 'ip addr add {ip}/30 dev {nv} && ip link set {nv} up && ip link set lo up && ip route add default via {host_ip}'"
        ));
        assert!(
            setup.status.success(),
            "{}",
            String::from_utf8_lossy(&setup.stderr)
        );
        OtherHost {
            ns,
            hv,
            host_ip,
            ip,
        }
    }

    /// Run a shell command inside.
    fn sh(&self, cmd: &str) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.ns.id().to_string(), "-n", "sh", "-c", cmd])
            .output()
            .unwrap()
    }

    /// Start a long-running command inside.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new("nsenter")
            .args(["-t", &self.ns.id().to_string(), "-n"])
            .args(args)
            .spawn()
            .unwrap()
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = sh(&format!("ip link del {}", self.hv));
        let _ = self.ns.kill();
        let _ = self.ns.wait();
    }
}

/// The host's own network state, as berth's tests may change it: links and
/// IPv4 addresses, the nftables ruleset and the legacy iptables rules,
/// `ip_forward`. Left out: berth's bridges, veths and rules (many tests run
/// at once; each checks its own leftovers with [`Footprint`]), the tests'
/// own links, and what other engines (dockerd, podman) change while they
/// run: their links, their chains and the rules naming them, and every
/// packet counter.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    links: Vec<String>,
    addrs: Vec<String>,
    nft: String,
    legacy: String,
    ip_forward: String,
}

/// Links made by berth, its tests or another engine.
fn engine_link(name: &str) -> bool {
    [
        "vb", "br-", "berth", "tph", "veth", "docker", "cni", "podman",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Chains of other engines, and rules naming their chains or links, or
/// berth's (tagged, or in berth's iptables chains).
fn engine_rule(line: &str) -> bool {
    [
        "DOCKER", "docker", "CNI-", "NETAVARK", "netavark", "br-", "veth", "cni", "podman",
        "berth", "BERTH",
    ]
    .iter()
    .any(|w| line.contains(w))
}

/// `nft list ruleset` without berth's table, other engines' tables,
/// chains and rules ([`engine_rule`]), and counters.
fn nft_host_rules() -> String {
    let mut out = String::new();
    let mut skip_until: Option<String> = None;
    for l in text(&["nft", "list", "ruleset"]).lines() {
        if let Some(end) = &skip_until {
            if l == end {
                skip_until = None;
            }
            continue;
        }
        let t = l.trim_start();
        let block = t.starts_with("table ") || t.starts_with("chain ") || t.starts_with("set ");
        if block && engine_rule(t) && t.ends_with('{') {
            // Skip to the closing brace at the same indentation.
            let indent = &l[..l.len() - t.len()];
            skip_until = Some(format!("{indent}}}"));
            continue;
        }
        if engine_rule(t) {
            continue;
        }
        out.push_str(&without_counters(l));
        out.push('\n');
    }
    out
}

fn without_counters(line: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    let mut it = line.split(' ').peekable();
    while let Some(w) = it.next() {
        if (w == "packets" || w == "bytes") && it.peek().is_some_and(|n| n.parse::<u64>().is_ok()) {
            it.next();
            continue;
        }
        words.push(w);
    }
    words.join(" ")
}

fn host_state() -> HostState {
    let links = text(&["ip", "-o", "link"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| !engine_link(n))
        .collect();
    let addrs = text(&["ip", "-o", "-4", "addr"])
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|n| !engine_link(n)))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    let mut legacy = String::new();
    for t in legacy_tables() {
        for l in text(&["iptables-legacy", "-w", "-t", &t, "-S"]).lines() {
            // A table made by listing it (its chains accept) is no change.
            let accepts = l.starts_with("-P ") && l.ends_with(" ACCEPT");
            if !engine_rule(l) && !accepts {
                legacy.push_str(&format!("{t}: {l}\n"));
            }
        }
    }
    HostState {
        links,
        addrs,
        nft: nft_host_rules(),
        legacy,
        ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
    }
}

/// After a test: the host's own network state is what it was, and
/// nothing of the test's berth is left.
fn assert_host_unchanged(before: &HostState, made: &Footprint) {
    let mut now = host_state();
    let mut left = made.leftovers();
    for _ in 0..100 {
        if &now == before && left.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        now = host_state();
        left = made.leftovers();
    }
    assert_eq!(&now, before, "the host's network state changed");
    assert!(left.is_empty(), "berth left behind: {left:#?}");
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
    let before = host_state();
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
    let other = OtherHost::new(7);
    let remote = other.sh(&format!(
        "busybox wget -q -O - http://{}:{all}/hostname",
        other.host_ip
    ));
    // The 127.0.0.1-only port does not answer on other addresses.
    let other_port = other.sh(&format!(
        "busybox wget -q -O - http://{}:{local}/hostname 2>&1",
        other.host_ip
    ));
    drop(other);
    assert!(
        String::from_utf8_lossy(&remote.stdout).contains(&id[..12]),
        "from another host: {}{}",
        String::from_utf8_lossy(&remote.stdout),
        String::from_utf8_lossy(&remote.stderr)
    );
    assert!(!String::from_utf8_lossy(&other_port.stdout).contains(&id[..12]));
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
    assert_census_clean(&b);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn containers_resolve_each_other_by_name_on_a_user_network() {
    let before = host_state();
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
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn network_options_ip_mac_alias_dns_and_extra_hosts() {
    let before = host_state();
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
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

/// Whether `wget URL` succeeds within 3 s when run by berth with `args`
/// (`run … IMAGE` or `exec NAME`). The shell stays pid 1: `timeout`
/// cannot kill a pid 1.
fn reaches(b: &Berth, args: &[&str], url: &str) -> bool {
    let mut a = args.to_vec();
    let script = format!("timeout 3 wget -q -O - {url} >/dev/null 2>&1; echo rc=$?");
    a.extend(["sh", "-c", &script]);
    let out = b.ok(&a);
    out.trim() == "rc=0"
}

/// The address of container `name` on network `net`.
fn ip_on(b: &Berth, net: &str, name: &str) -> String {
    let id = b.ok(&["inspect", "--format", "{{.Id}}", name]);
    let out = b.ok(&[
        "network",
        "inspect",
        "--format",
        "{{json .Containers}}",
        net,
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v[id.trim()]["IPv4Address"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not on {net}: {v}"))
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_default_bridge_is_used_without_network_and_has_no_names() {
    let before = host_state();
    let b = Berth::new();
    let ls = b.ok(&["network", "ls"]);
    assert!(ls.contains(" bridge "), "{ls}");
    let web = b
        .ok(&[
            "run", "-d", "--name", "web", IMAGE, "httpd", "-f", "-p", "8080", "-h", "/etc",
        ])
        .trim()
        .to_string();
    let ip = ip_on(&b, "bridge", "web");
    let gw = b.ok(&["network", "inspect", "--format", "{{json .IPAM}}", "bridge"]);
    let gw: serde_json::Value = serde_json::from_str(gw.trim()).unwrap();
    let gw = gw["Config"][0]["Gateway"].as_str().unwrap().to_string();
    // Another container reaches it by address.
    let page = b.ok(&[
        "run",
        "--rm",
        IMAGE,
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{ip}:8080/hostname"),
    ]);
    assert!(page.contains(&web[..12]), "{page}");
    // No DNS responder of berth's there (Docker's default bridge has none).
    let resolv = b.ok(&["run", "--rm", IMAGE, "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains(&gw), "{resolv}");
    assert!(resolv.contains("nameserver"), "{resolv}");
    // It cannot be removed; aliases and --ip are for user networks.
    let o = b.run(&["network", "rm", "bridge"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("pre-defined"), "{}", stderr(&o));
    for extra in [["--network-alias", "x"], ["--ip", "10.1.2.3"]] {
        let mut args = vec!["run", "--rm"];
        args.extend(extra);
        args.extend([IMAGE, "true"]);
        let o = b.run(&args);
        assert_eq!(code(&o), 125, "{extra:?}");
        assert!(stderr(&o).contains("user-defined"), "{}", stderr(&o));
    }
    let opts = b.ok(&[
        "network",
        "inspect",
        "--format",
        "{{json .Options}}",
        "bridge",
    ]);
    assert!(opts.contains("default_bridge"), "{opts}");
    b.ok(&["rm", "-f", "web"]);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn outbound_traffic_is_masqueraded_and_internal_and_other_networks_are_closed() {
    let before = host_state();
    let b = Berth::new();
    // "The world": another host answering with the address it sees.
    let other = OtherHost::new(9);
    let www = tempfile::tempdir().unwrap();
    std::fs::create_dir(www.path().join("cgi-bin")).unwrap();
    let cgi = www.path().join("cgi-bin/addr");
    std::fs::write(
        &cgi,
        "#!/bin/sh\necho Content-Type: text/plain\necho\necho \"seen:$REMOTE_ADDR\"\n",
    )
    .unwrap();
    sh(&format!("chmod 755 {}", cgi.display()));
    let mut server = other.spawn(&[
        "busybox",
        "httpd",
        "-f",
        "-p",
        &format!("{}:80", other.ip),
        "-h",
        www.path().to_str().unwrap(),
    ]);
    let url = format!("http://{}/cgi-bin/addr", other.ip);
    let mut seen = String::new();
    for _ in 0..30 {
        let o = b.run(&["run", "--rm", IMAGE, "wget", "-q", "-O", "-", &url]);
        seen = stdout(&o);
        if seen.contains("seen:") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The other host sees the host's address: the container was NATed.
    assert_eq!(seen.trim(), format!("seen:{}", other.host_ip));
    // An internal network has no way out.
    b.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.251.21.0/24",
        "closed",
    ]);
    assert!(!reaches(
        &b,
        &["run", "--rm", "--network", "closed", IMAGE],
        &url
    ));
    // Two user networks do not reach each other.
    b.ok(&["network", "create", "--subnet", "10.251.22.0/24", "left"]);
    b.ok(&["network", "create", "--subnet", "10.251.23.0/24", "right"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "r",
        "--network",
        "right",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let rip = ip_on(&b, "right", "r");
    let rurl = format!("http://{rip}:8080/hostname");
    let same = b.run(&[
        "run",
        "--rm",
        "--network",
        "right",
        IMAGE,
        "wget",
        "-q",
        "-O",
        "-",
        &rurl,
    ]);
    assert_eq!(code(&same), 0, "{}", stderr(&same));
    assert!(!reaches(
        &b,
        &["run", "--rm", "--network", "left", IMAGE],
        &rurl
    ));
    let _ = server.kill();
    let _ = server.wait();
    drop(other);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let before = host_state();
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.251.31.0/24", "front"]);
    b.ok(&["network", "create", "--subnet", "10.251.32.0/24", "back"]);
    let app = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "app",
            "--network",
            "front",
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
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    b.ok(&["network", "connect", "--alias", "api", "back", "app"]);
    let addrs = b.ok(&["exec", "app", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.contains("eth1") && addrs.contains("10.251.32."),
        "{addrs}"
    );
    // Names on the new network, both ways: app finds db; db finds app by
    // its alias.
    let page = b.ok(&[
        "exec",
        "app",
        "wget",
        "-q",
        "-O",
        "-",
        "http://db:8080/hostname",
    ]);
    assert!(!page.is_empty());
    let page = b.ok(&[
        "exec",
        "db",
        "wget",
        "-q",
        "-O",
        "-",
        "http://api:8080/hostname",
    ]);
    assert!(page.contains(&app[..12]), "{page}");
    let app_back = ip_on(&b, "back", "app");
    // Already connected: refused.
    let o = b.run(&["network", "connect", "back", "app"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already connected"), "{}", stderr(&o));
    // Disconnect: the interface, the address and the lease go.
    b.ok(&["network", "disconnect", "back", "app"]);
    let addrs = b.ok(&["exec", "app", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("10.251.32."), "{addrs}");
    assert!(!container_ips(&b, "back")
        .iter()
        .any(|i| i.starts_with(&app_back)));
    assert!(!reaches(
        &b,
        &["exec", "db"],
        &format!("http://{app_back}:8080/hostname")
    ));
    // Back again with an address of our choice.
    b.ok(&["network", "connect", "--ip", "10.251.32.77", "back", "app"]);
    let addrs = b.ok(&["exec", "app", "ip", "-4", "-o", "addr"]);
    assert!(addrs.contains("10.251.32.77/24"), "{addrs}");
    // A created container gets its connected networks when it starts.
    b.ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["network", "connect", "back", "later"]);
    b.ok(&["start", "later"]);
    let addrs = b.ok(&["exec", "later", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.contains("10.251.31.") && addrs.contains("10.251.32."),
        "{addrs}"
    );
    // --network none cannot be connected.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "alone",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "300",
    ]);
    let o = b.run(&["network", "connect", "back", "alone"]);
    assert_eq!(code(&o), 1);
    assert_census_clean(&b);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn network_container_mode_shares_the_namespace() {
    let before = host_state();
    let b = Berth::new();
    let web = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            IMAGE,
            "httpd",
            "-f",
            "-p",
            "127.0.0.1:8080",
            "-h",
            "/etc",
        ])
        .trim()
        .to_string();
    let page = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        IMAGE,
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:8080/hostname",
    ]);
    assert!(page.contains(&web[..12]), "{page}");
    let host = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        IMAGE,
        "hostname",
    ]);
    assert_eq!(host.trim(), &web[..12]);
    for bad in [["-p", "80"], ["--hostname", "x"]] {
        let mut args = vec!["run", "--rm", "--network", "container:web"];
        args.extend(bad);
        args.extend([IMAGE, "true"]);
        let o = b.run(&args);
        assert_eq!(code(&o), 125, "{bad:?}");
        assert!(stderr(&o).contains("conflicting options"), "{}", stderr(&o));
    }
    // When web stops, a container still in its namespace loses web's
    // interface (its address is free again).
    b.ok(&[
        "run",
        "-d",
        "--name",
        "side",
        "--network",
        "container:web",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["kill", "web"]);
    b.ok(&["wait", "web"]);
    let mut ifs = String::new();
    for _ in 0..50 {
        ifs = b.ok(&["exec", "side", "ls", "/sys/class/net"]);
        if ifs == "lo\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ifs, "lo\n");
    b.ok(&["rm", "-f", "side"]);
    let o = b.run(&["run", "--rm", "--network", "container:web", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

/// A static UDP echo server (`udp-echo PORT`: answers "echo:<data>").
fn udp_echo_binary(dir: &std::path::Path) -> Vec<u8> {
    let src = dir.join("udp-echo.c");
    std::fs::write(
        &src,
        r#"#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    for (;;) {
        char b[1024], o[1100];
        struct sockaddr_in f;
        socklen_t l = sizeof f;
        int n = recvfrom(s, b, sizeof b - 1, 0, (struct sockaddr *)&f, &l);
        if (n < 0) continue;
        b[n] = 0;
        int m = snprintf(o, sizeof o, "echo:%s", b);
        sendto(s, o, m, 0, (struct sockaddr *)&f, l);
    }
}
"#,
    )
    .unwrap();
    let out_path = dir.join("udp-echo");
    let o = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out_path)
        .arg(&src)
        .output()
        .expect("cc (apt-get install gcc libc6-dev)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out_path).unwrap()
}

#[test]
fn udp_ports_are_published() {
    let before = host_state();
    let b = Berth::new();
    let echo = udp_echo_binary(b.path());
    let tar = busybox_rootfs_tar_with(&[("bin/udp-echo", 0o755, &echo)]);
    let o = b.run_stdin(&["import", "-", "udp:test"], &tar);
    assert!(o.status.success(), "{}", stderr(&o));
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        &format!("127.0.0.1:{port}:5000/udp"),
        "udp:test",
        "udp-echo",
        "5000",
    ]);
    let ports = b.ok(&["port", "echo"]);
    assert!(
        ports.contains(&format!("5000/udp -> 127.0.0.1:{port}")),
        "{ports}"
    );
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut got = String::new();
    for _ in 0..50 {
        c.send_to(b"ping", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = c.recv(&mut buf) {
            got = String::from_utf8_lossy(&buf[..n]).into_owned();
            break;
        }
    }
    assert_eq!(got, "echo:ping");
    b.ok(&["rm", "-f", "echo"]);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

/// Remove berth's chains and the jumps into them from iptables `bin`
/// (the fallback test made them).
fn iptables_cleanup(bin: &str) {
    for (table, chain, rule) in [
        (
            "nat",
            "PREROUTING",
            "-m addrtype --dst-type LOCAL -j BERTH-PORTS",
        ),
        (
            "nat",
            "OUTPUT",
            "-m addrtype --dst-type LOCAL -j BERTH-PORTS",
        ),
        ("nat", "POSTROUTING", "-j BERTH-MASQ"),
        ("filter", "FORWARD", "-j BERTH-FORWARD"),
    ] {
        let _ = sh(&format!("{bin} -w -t {table} -D {chain} {rule}"));
    }
    for (table, chain) in [
        ("nat", "BERTH-PORTS"),
        ("nat", "BERTH-MASQ"),
        ("filter", "BERTH-FORWARD"),
    ] {
        let _ = sh(&format!(
            "{bin} -w -t {table} -F {chain} && {bin} -w -t {table} -X {chain}"
        ));
    }
}

#[test]
fn the_iptables_fallback_publishes_and_cleans_up() {
    let bin = "iptables-legacy";
    assert!(
        sh(&format!("command -v {bin}")).status.success(),
        "{bin} missing: apt-get install iptables"
    );
    let before = host_state();
    let b = Berth::new();
    std::fs::write(
        b.path().join("config/berth.toml"),
        format!("[network]\nip_forward = false\nfirewall = \"iptables\"\niptables = \"{bin}\"\n"),
    )
    .unwrap();
    let port = free_port();
    let id = b
        .ok(&[
            "run",
            "-d",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
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
    let page = http_get(&format!("127.0.0.1:{port}"), "/hostname");
    assert!(page.contains(&id[..12]), "{page}");
    let rules = String::from_utf8_lossy(&sh(&format!("{bin} -w -t nat -S")).stdout).into_owned();
    assert!(rules.contains(&format!("berth:{id}")), "{rules}");
    assert!(rules.contains("-j MASQUERADE"), "{rules}");
    b.ok(&["rm", "-f", &id]);
    let rules = String::from_utf8_lossy(&sh(&format!("{bin} -w -t nat -S")).stdout).into_owned();
    assert!(!rules.contains(&format!("berth:{id}")), "{rules}");
    let made = Footprint::of(&b);
    drop(b);
    // The default network's rules went with system reset.
    let rules = String::from_utf8_lossy(&sh(&format!("{bin} -w -t nat -S")).stdout).into_owned();
    assert!(!rules.contains("berth-net:"), "{rules}");
    iptables_cleanup(bin);
    assert_host_unchanged(&before, &made);
}

#[test]
fn a_crashed_monitor_and_a_reboot_leave_the_network_usable() {
    let before = host_state();
    let b = Berth::new();
    let net = b.ok(&["network", "create", "--subnet", "10.251.41.0/24", "boot"]);
    let net = net.trim().to_string();
    let bridge = format!("br-{}", &net[..12]);
    let port = free_port();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "crash",
            "--network",
            "boot",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
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
    http_get(&format!("127.0.0.1:{port}"), "/hostname");
    // The monitor and the container die without any cleanup.
    let pid: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "crash"])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent_of(pid);
    sh(&format!("kill -9 {monitor} {pid}"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    b.ok(&["rm", "-f", "crash"]);
    let rules = String::from_utf8_lossy(&sh("nft list table ip berth").stdout).into_owned();
    assert!(!rules.contains(&format!("berth:{id}")), "{rules}");
    assert!(container_ips(&b, "boot").is_empty());
    // A reboot: the bridge, its rules and the run dir are gone.
    sh(&format!("ip link del {bridge}"));
    let listing = String::from_utf8_lossy(&sh("nft -a list table ip berth").stdout).into_owned();
    let mut chain = String::new();
    for l in listing.lines() {
        let t = l.trim();
        if let Some(c) = t.strip_prefix("chain ") {
            chain = c.split_whitespace().next().unwrap().to_string();
        }
        if t.contains(&format!("berth-net:{net}")) {
            let h = t.rsplit_once("# handle ").unwrap().1;
            sh(&format!("nft delete rule ip berth {chain} handle {h}"));
        }
    }
    let _ = sh(&format!("pkill -f 'dns-serve {net}'"));
    std::fs::remove_dir_all(&b.runroot).unwrap();
    // First use brings it all back: bridge, rules, names.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "boot",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    assert_eq!(links(&[&bridge]), vec![bridge.clone()]);
    let rules = String::from_utf8_lossy(&sh("nft list table ip berth").stdout).into_owned();
    assert!(rules.contains(&format!("berth-net:{net}")), "{rules}");
    let page = b.ok(&[
        "run",
        "--rm",
        "--network",
        "boot",
        IMAGE,
        "wget",
        "-q",
        "-O",
        "-",
        "http://web:8080/hostname",
    ]);
    assert!(!page.is_empty());
    assert_census_clean(&b);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

#[test]
fn a_bridge_keeps_its_mac_address_when_containers_leave() {
    let b = Berth::new();
    let bridge = format!("bmac{}", std::process::id() % 100_000);
    b.ok(&[
        "network",
        "create",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "macnet",
    ]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = b.ok(&["run", "-d", "--network", "macnet", IMAGE, "sleep", "100"]);
        ids.push(id.trim().to_string());
    }
    let read = |f: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/{f}"))
            .unwrap()
            .trim()
            .to_string()
    };
    let mac = read("address");
    // Set by berth (NET_ADDR_SET), not taken from a port.
    assert_eq!(read("addr_assign_type"), "3");
    for id in &ids {
        b.ok(&["rm", "-f", id]);
        assert_eq!(read("address"), mac);
    }
    b.ok(&["network", "rm", "macnet"]);
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

/// Issue 19: a dual-stack network (`--ipv6`, an IPv4 and an IPv6
/// `--subnet` with their `--gateway`, `--ip-range` and `--aux-address`,
/// `-o` MTU, `--ipam-opt`), containers with `--ip6` and `--link-local-ip`
/// (and `connect --ip6` on a running one): addresses as dockerd 20.10
/// hands them out (aux addresses never), AAAA answers for names, ping
/// over IPv6, and inspect's IPv6 fields.
#[test]
#[ignore = "needs root"]
fn a_dual_stack_network_gives_ipv6_addresses_names_and_routes() {
    let before = host_state();
    let b = Berth::new();
    b.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.251.60.0/24",
        "--subnet",
        "fd19:60::/64",
        "--gateway",
        "10.251.60.254",
        "--gateway",
        "fd19:60::fe",
        "--ip-range",
        "10.251.60.128/25",
        "--ip-range",
        "fd19:60::100/120",
        "--aux-address",
        "a=10.251.60.128",
        "--aux-address",
        "b6=fd19:60::100",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "--ipam-opt",
        "foo=bar",
        "ds",
    ]);
    let net = b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{json .IPAM}} {{json .Options}}",
        "ds",
    ]);
    assert_eq!(
        net.trim(),
        r#"true {"Driver":"default","Options":{"foo":"bar"},"Config":[{"Subnet":"10.251.60.0/24","IPRange":"10.251.60.128/25","Gateway":"10.251.60.254","AuxiliaryAddresses":{"a":"10.251.60.128"}},{"Subnet":"fd19:60::/64","IPRange":"fd19:60::100/120","Gateway":"fd19:60::fe","AuxiliaryAddresses":{"b6":"fd19:60::100"}}]} {"com.docker.network.driver.mtu":"1400"}"#
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "d1",
        "--network",
        "ds",
        IMAGE,
        "sleep",
        "600",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "d2",
        "--network",
        "ds",
        "--ip6",
        "fd19:60::1:5",
        "--link-local-ip",
        "169.254.9.9",
        "--link-local-ip",
        "fe80::99",
        IMAGE,
        "sleep",
        "600",
    ]);
    // The ranges' first addresses are the aux ones: skipped.
    let f = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}} {{json .IPAMConfig}}{{end}}";
    assert_eq!(
        b.ok(&["inspect", "-f", f, "d1"]).trim(),
        "10.251.60.129 fd19:60::101/64 fd19:60::fe null"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", f, "d2"]).trim(),
        r#"10.251.60.130 fd19:60::1:5/64 fd19:60::fe {"IPv6Address":"fd19:60::1:5","LinkLocalIPs":["169.254.9.9","fe80::99"]}"#
    );
    let addrs = b.ok(&["exec", "d2", "ip", "-o", "addr", "show", "eth0"]);
    for a in ["169.254.9.9/16", "fd19:60::1:5/64", "fe80::99/64"] {
        assert!(addrs.contains(a), "{a} missing: {addrs}");
    }
    assert!(b
        .ok(&["exec", "d1", "ip", "link", "show", "eth0"])
        .contains("mtu 1400"));
    assert!(b
        .ok(&["exec", "d1", "ip", "-6", "route"])
        .contains("default via fd19:60::fe"));
    // AAAA and A for a name; ping over IPv6 by name.
    let ns = b.ok(&["exec", "d1", "nslookup", "d2"]);
    assert!(
        ns.contains("fd19:60::1:5") && ns.contains("10.251.60.130"),
        "{ns}"
    );
    let ping = b.ok(&["exec", "d1", "ping6", "-c1", "-W5", "d2"]);
    assert!(ping.contains("1 packets received"), "{ping}");
    // A running container connected with --ip6 gets it at once.
    b.ok(&["run", "-d", "--name", "d3", IMAGE, "sleep", "600"]);
    b.ok(&["network", "connect", "--ip6", "fd19:60::1:9", "ds", "d3"]);
    let ping = b.ok(&["exec", "d3", "ping6", "-c1", "-W5", "fd19:60::101"]);
    assert!(ping.contains("1 packets received"), "{ping}");
    let cs = b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.IPv6Address}} {{end}}",
        "ds",
    ]);
    for a in ["fd19:60::101/64", "fd19:60::1:5/64", "fd19:60::1:9/64"] {
        assert!(cs.contains(a), "{a} missing: {cs}");
    }
    // dockerd's refusals.
    for (args, msg) in [
        (
            vec!["--ip6", "fd19:99::5"],
            "Invalid address fd19:99::5: It does not belong to any of this network's subnets.",
        ),
        (vec!["--ip6", "fd19:60::1:5"], "Address already in use"),
        (vec!["--ip6", "nope"], "invalid IPv6 address: nope."),
        (
            vec!["--link-local-ip", "10.1.1.1"],
            "invalid link local IP address: 10.1.1.1.",
        ),
    ] {
        let mut a = vec!["run", "--rm", "--network", "ds"];
        a.extend(args);
        a.extend([IMAGE, "true"]);
        let o = b.run(&a);
        assert_eq!(code(&o), 125, "{a:?}");
        assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
    }
    b.ok(&["rm", "-f", "d1", "d2", "d3"]);
    b.ok(&["network", "rm", "ds"]);
    assert_census_clean(&b);
    let made = Footprint::of(&b);
    drop(b);
    assert_host_unchanged(&before, &made);
}

/// Issue 19: `network create` as a dockerd 20.10 without swarm answers
/// (recorded in crates/cli/tests/diff/fixtures/08-network.txt too).
#[test]
#[ignore = "needs root"]
fn network_create_options_are_answered_as_dockerd() {
    let b = Berth::new();
    for (args, msg) in [
        (
            vec!["--scope", "swarm"],
            "cannot create a swarm scoped network when swarm is not active",
        ),
        (
            vec!["--scope", "global"],
            "This node is not a swarm manager.",
        ),
        (
            vec!["--ingress"],
            "Ingress network can only be global scope network",
        ),
        (vec!["-d", "overlay"], "This node is not a swarm manager."),
        (
            vec!["--ipv6"],
            "could not find an available, non-overlapping IPv6 address pool",
        ),
        (
            vec!["--subnet", "10.251.61.0/24", "--subnet", "10.251.62.0/24"],
            "bridge driver doesn't support multiple subnets",
        ),
        (
            vec!["--gateway", "10.251.61.1"],
            "every ip-range or gateway must have a corresponding subnet",
        ),
        (
            vec!["--subnet", "10.251.61.0/24", "--gateway", "10.251.62.1"],
            "no matching subnet for gateway 10.251.62.1",
        ),
        (
            vec![
                "--subnet",
                "10.251.61.0/24",
                "--aux-address",
                "a=10.251.62.5",
            ],
            "no matching subnet for aux-address 10.251.62.5",
        ),
        (
            vec!["-o", "com.docker.network.bridge.enable_icc=maybe"],
            "failed to parse com.docker.network.bridge.enable_icc value: maybe",
        ),
        (
            vec!["-o", "com.docker.network.driver.mtu=abc"],
            "failed to parse com.docker.network.driver.mtu value: abc",
        ),
        (vec!["--ipam-driver", "other"], "other"),
    ] {
        let mut a = vec!["network", "create"];
        a.extend(args);
        a.push("n61");
        let o = b.run(&a);
        assert_eq!(code(&o), 1, "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
    }
    // Accepted: a name with a space, --attachable, --scope local, any -o.
    b.ok(&[
        "network",
        "create",
        "--attachable",
        "--scope",
        "local",
        "-o",
        "foo=bar",
        "test 01",
    ]);
    assert_eq!(
        b.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Attachable}} {{.Scope}} {{json .Options}}",
            "test 01"
        ])
        .trim(),
        r#"true local {"foo":"bar"}"#
    );
    b.ok(&["network", "rm", "test 01"]);
    assert_census_clean(&b);
}

/// `host` and `none` as dockerd has them: listed (with the driver filter),
/// inspected with ids that stay, never removed, connected or disconnected
/// with dockerd's refusals, and named by id in a container's inspect.
#[test]
fn host_and_none_are_networks_as_in_docker() {
    let b = Berth::new();
    let ls = b.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert_eq!(
        ls,
        "bridge bridge local\nhost host local\nnone null local\n"
    );
    assert_eq!(
        b.ok(&[
            "network",
            "ls",
            "--filter",
            "driver=null",
            "--format",
            "{{.Name}}"
        ]),
        "none\n"
    );
    let ids = b.ok(&["network", "inspect", "-f", "{{.Id}}", "host", "none"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    assert_eq!(
        b.ok(&["network", "inspect", "-f", "{{.Id}}", "host", "none"]),
        ids
    );
    let host_id = ids.lines().next().unwrap().to_string();
    assert_eq!(
        b.ok(&["network", "inspect", "-f", "{{.Name}}", &host_id[..12]]),
        "host\n"
    );
    for n in ["host", "none"] {
        let o = b.run(&["network", "rm", n]);
        assert_eq!(code(&o), 1);
        assert_eq!(
            stderr(&o),
            format!("berth: {n} is a pre-defined network and cannot be removed\n")
        );
    }
    b.ok(&["network", "create", "nwb"]);
    for (name, mode) in [
        ("onbridge", "bridge"),
        ("onhost", "host"),
        ("alone", "none"),
    ] {
        b.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            mode,
            IMAGE,
            "sleep",
            "300",
        ]);
    }
    for (args, why) in [
        (["connect", "host", "onbridge"], "container cannot be disconnected from host network or connected to host network"),
        (["connect", "none", "onbridge"], "container cannot be connected to multiple networks with one of the networks in private (none) mode"),
        (["connect", "nwb", "onhost"], "container sharing network namespace with another container or host cannot be connected to any other network"),
        (["connect", "nwb", "alone"], "container cannot be connected to multiple networks with one of the networks in private (none) mode"),
        (["disconnect", "host", "onhost"], "container cannot be disconnected from host network or connected to host network"),
    ] {
        let o = b.run(&[&["network"][..], &args[..]].concat());
        assert_eq!(code(&o), 1, "{args:?}");
        assert_eq!(stderr(&o), format!("berth: {why}\n"), "{args:?}");
    }
    b.ok(&["network", "disconnect", "none", "alone"]);
    // HostConfig.NetworkMode as docker run sends it: `default` when no
    // --network is given, else the mode named.
    b.ok(&["create", "--name", "plain", IMAGE]);
    for (c, mode) in [
        ("plain", "default"),
        ("onbridge", "bridge"),
        ("onhost", "host"),
        ("alone", "none"),
    ] {
        assert_eq!(
            b.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", c]),
            format!("{mode}\n"),
            "{c}"
        );
    }
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.host.NetworkID}}",
            "onhost"
        ]),
        host_id.clone() + "\n"
    );
    assert_eq!(
        b.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{.IPv4Address}}|{{end}}",
            "host",
        ]),
        "onhost |\n"
    );
    b.ok(&["rm", "-f", "onbridge", "onhost", "alone", "plain"]);
    b.ok(&["network", "rm", "nwb"]);
    assert_census_clean(&b);
}
