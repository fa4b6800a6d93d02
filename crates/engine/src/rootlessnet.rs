//! Rootless berth's network namespace for user-defined networks
//! (podman's "rootless-netns"): one per user, made inside berth's user
//! namespace, where berth is root and so has `CAP_NET_ADMIN`. Its bridges,
//! veths, addresses, DNS responders and nftables rules are made there by
//! the same code rootful berth runs in the host's namespace; the
//! namespace reaches the outside through pasta (slirp4netns without it),
//! and published ports are forwarded into it by a small proxy per
//! container (`berth-ports`, podman's `rootlessport`): it listens on the
//! host and connects to the container's address inside (TCP), or relays
//! datagrams per client through a socket of its own there (UDP). The same
//! proxy serves the UDP ports of a container on slirp4netns, in that
//! container's own namespace.
//!
//! The namespace is bound on `<runroot>/netns/rootless-netns` (the mount
//! lives in berth's mount namespace, shared by every command), made when
//! the first container is attached to a user network and taken down when
//! the last one leaves (no lease left), at `network rm` and at
//! `system reset`: responders, pasta, the bind and its pid file go.
//! `<runroot>/rootless-netns.lock` serialises making, attaching and
//! taking down.
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

/// Where the namespace is bound.
pub(crate) fn netns_file(runroot: &Path) -> PathBuf {
    runroot.join("netns").join("rootless-netns")
}

/// The pid of the namespace's pasta or slirp4netns.
fn pid_file(runroot: &Path) -> PathBuf {
    runroot.join("rootless-netns.pid")
}

/// The address the namespace's DNS queries are sent to: pasta forwards
/// it to the host's resolver (`--dns-forward`), slirp4netns answers on
/// its own 10.0.2.3.
pub(crate) fn dns_upstream(runroot: &Path) -> std::net::SocketAddr {
    let slirp = std::fs::read_to_string(pid_file(runroot))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
        .is_some_and(|c| c.trim() == "slirp4netns");
    if slirp {
        (
            crate::usernet::SLIRP_DNS
                .parse::<std::net::Ipv4Addr>()
                .expect("an address"),
            53,
        )
            .into()
    } else {
        (PASTA_DNS, 53).into()
    }
}

const PASTA_DNS: [u8; 4] = [169, 254, 1, 1];

/// Held while the namespace is made, used or taken down.
pub(crate) fn lock(runroot: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let path = runroot.join("rootless-netns.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking {}: {e}", path.display()))
}

/// Is the namespace there (its file a bound namespace)?
pub(crate) fn exists(runroot: &Path) -> bool {
    nix::sys::statfs::statfs(&netns_file(runroot))
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// The live pasta or slirp4netns of the namespace.
fn tool_pid(runroot: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(runroot))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let ours = matches!(
        comm.trim(),
        "pasta" | "pasta.avx2" | "passt" | "passt.avx2" | "slirp4netns"
    );
    (ours && running(pid)).then_some(pid)
}

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Make the namespace and its way out unless they are there. Call with
/// [`lock`] held, from a thread in the host's network namespace (the
/// tool's outside is the caller's). `config`: berth.toml's dir, which may
/// name the tool.
pub(crate) fn ensure(runroot: &Path, config: &Path) -> Result<(), String> {
    if exists(runroot) && tool_pid(runroot).is_some() {
        return Ok(());
    }
    // Half there (the tool died): start again from nothing.
    teardown_netns(runroot);
    // (slirp4netns or pasta, whichever is installed, or berth.toml's.)
    let tool = crate::settings::Settings::load(config)
        .and_then(|s| s.rootless_network_tool())
        .map_err(|e| e.to_string())?;
    let bin = tool.for_user_networks()?;
    let file = netns_file(runroot);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&file)
        .map_err(|e| format!("creating {}: {e}", file.display()))?;
    // A thread of its own makes the namespace and binds it: its network
    // namespace is per thread, and it ends there.
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("creating the rootless network namespace: {e}"))?;
            nix::mount::mount(
                Some(Path::new("/proc/thread-self/ns/net")),
                &file,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("binding the network namespace on {}: {e}", file.display()))?;
            let mut nl = network::Netlink::open().map_err(|e| format!("netlink: {e}"))?;
            if let Ok(Some(lo)) = nl.link_index("lo") {
                nl.set_up(lo).map_err(|e| format!("bringing lo up: {e}"))?;
            }
            // The namespace routes between its bridges and the tool.
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
                .map_err(|e| format!("net.ipv4.ip_forward in the rootless namespace: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err("the namespace thread panicked".into()))
    });
    if let Err(e) = made {
        teardown_netns(runroot);
        return Err(e);
    }
    let started = match tool {
        crate::usernet::Tool::Pasta => start_pasta(&bin, runroot, &file),
        crate::usernet::Tool::Slirp4netns => start_slirp(&bin, runroot, &file),
    };
    if let Err(e) = started {
        teardown_netns(runroot);
        return Err(e);
    }
    Ok(())
}

fn start_pasta(bin: &Path, runroot: &Path, file: &Path) -> Result<(), String> {
    let dns = std::net::Ipv4Addr::from(PASTA_DNS).to_string();
    // No forwards of pasta's own: published ports go through the proxy of
    // each container. pasta configures the namespace, writes its pid and
    // forks into the background.
    let out = std::process::Command::new(bin)
        .arg("--config-net")
        .arg("--quiet")
        .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
        .args(["--dns-forward", &dns])
        .arg("-P")
        .arg(pid_file(runroot))
        .arg("--netns")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "pasta failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn start_slirp(bin: &Path, runroot: &Path, file: &Path) -> Result<(), String> {
    use std::io::Read;
    let (child, ready_r) = crate::usernet::spawn_slirp(bin, file, None)?;
    std::fs::write(pid_file(runroot), child.id().to_string())
        .map_err(|e| format!("writing {}: {e}", pid_file(runroot).display()))?;
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(ready_r).read(&mut byte), Ok(1)) {
        return Err("slirp4netns exited before the rootless network was configured".into());
    }
    Ok(())
}

/// Run `f` on a thread in the namespace (which must exist): netlink
/// sockets it opens and processes it spawns are the namespace's.
pub(crate) fn run_in<T: Send>(
    runroot: &Path,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    let file = netns_file(runroot);
    let ns = std::fs::File::open(&file).map_err(|e| format!("opening {}: {e}", file.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering the rootless network namespace: {e}"))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err("the rootless network thread panicked".into()))
    })
}

/// Move the calling thread into the namespace bound on `file` for good
/// (the port proxy, once its host sockets are bound; threads it makes
/// after are there too).
fn enter(file: &Path) -> Result<(), String> {
    let ns = std::fs::File::open(file).map_err(|e| format!("opening {}: {e}", file.display()))?;
    nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("entering the rootless network namespace: {e}"))
}

/// Take the namespace down if no container is attached to a network
/// any more. Call with [`lock`] held.
pub(crate) fn release_if_unused(paths: &crate::Paths, store: &store::Store) {
    let busy = store.leases(None).map(|l| !l.is_empty()).unwrap_or(true);
    if !busy {
        teardown(paths);
    }
}

/// Take the namespace down: the DNS responders that live in it, then
/// the bind (pasta quits when its file goes), the tool and its pid file.
/// Call with [`lock`] held.
pub(crate) fn teardown(paths: &crate::Paths) {
    if let Ok(dir) = std::fs::read_dir(paths.runroot.join("dns")) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".lock") {
                crate::networks::stop_dns(paths, id);
            }
        }
    }
    let _ = std::fs::remove_dir(paths.runroot.join("dns"));
    teardown_netns(&paths.runroot);
}

fn teardown_netns(runroot: &Path) {
    let file = netns_file(runroot);
    let _ = nix::mount::umount2(&file, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(runroot.join("netns"));
    let pid = tool_pid(runroot);
    let _ = std::fs::remove_file(pid_file(runroot));
    if let Some(pid) = pid {
        stop_pid(pid);
    }
}

/// SIGTERM `pid` and wait a little for it to go (reaping it if it is
/// this process's child).
fn stop_pid(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    let gone = || {
        matches!(
            waitpid(p, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..))
        ) || !running(pid)
    };
    while !gone() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The name the port proxy gives itself (checked before it is signalled).
const PROXY_NAME: &str = "berth-ports";

fn proxy_pid_file(runroot: &Path, id: &str) -> PathBuf {
    runroot.join(format!("{id}.ports.pid"))
}

/// One published port as the proxy is told it on its command line:
/// `HOST_IP|HOST_PORT|CONTAINER_IP|CONTAINER_PORT|PROTO`.
pub(crate) fn proxy_spec(p: &crate::config::PortMapping, target: std::net::Ipv4Addr) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        p.host_ip, p.host_port, target, p.container_port, p.proto
    )
}

/// Start the port proxy of container `id` (from a thread in the host's
/// namespace), relaying into the network namespace bound on `netns`, and
/// wait until it listens, or say why it cannot.
pub(crate) fn start_proxy(
    paths: &crate::Paths,
    id: &str,
    netns: &Path,
    specs: &[String],
) -> Result<(), String> {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg("--root")
        .arg(&paths.root)
        .arg("--runroot")
        .arg(&paths.runroot)
        .arg("port-proxy")
        .arg("--netns")
        .arg(netns)
        .arg(id)
        .args(specs)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the port proxy: {e}"))?;
    let pid = child.id();
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    match line.trim_end().strip_prefix("error: ") {
        None if line.trim_end() == "ready" => {
            let path = proxy_pid_file(&paths.runroot, id);
            std::fs::write(&path, pid.to_string())
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(())
        }
        Some(e) => {
            let _ = child.wait();
            Err(e.to_string())
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err("the port proxy exited before it listened".into())
        }
    }
}

/// End the port proxy of container `id`, if it has one, and wait for its
/// ports to be free.
pub(crate) fn stop_proxy(runroot: &Path, id: &str) {
    let path = proxy_pid_file(runroot, id);
    let Some(pid) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == PROXY_NAME {
        stop_pid(pid);
    }
    let _ = std::fs::remove_file(&path);
}

fn parse_spec(s: &str) -> Option<(crate::config::PortMapping, std::net::SocketAddr)> {
    let f: Vec<&str> = s.split('|').collect();
    let [host_ip, host_port, ip, port, proto] = f.as_slice() else {
        return None;
    };
    let container_port: u16 = port.parse().ok()?;
    let target = std::net::SocketAddr::new(ip.parse().ok()?, container_port);
    Some((
        crate::config::PortMapping {
            host_ip: host_ip.to_string(),
            host_port: host_port.parse().ok()?,
            container_port,
            proto: proto.to_string(),
            picked: false,
        },
        target,
    ))
}

impl crate::Engine {
    /// `berth port-proxy --netns FILE ID SPEC…` (hidden): the published
    /// ports of a rootless container on a user-defined network (`FILE` is
    /// the rootless network namespace), or the UDP ports of one on
    /// slirp4netns (`FILE` is its own namespace). Binds each on the host
    /// (what is taken is said as for a rootful container), enters the
    /// namespace, says `ready` on stdout and relays TCP connections and
    /// UDP datagrams to the container's address there until it is killed.
    pub fn serve_ports(&self, id: &str, netns: &Path, specs: &[String]) -> crate::Result<()> {
        use std::io::Write;
        let say = |line: &str| {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        let _ = nix::sys::prctl::set_name(c"berth-ports");
        let parsed: Option<Vec<_>> = specs.iter().map(|s| parse_spec(s)).collect();
        let Some(parsed) = parsed else {
            say("error: bad port specification");
            return Ok(());
        };
        let mappings: Vec<_> = parsed.iter().map(|(p, _)| p.clone()).collect();
        let name = self
            .store()
            .container(id)
            .map(|r| r.name)
            .unwrap_or_default();
        let held = match crate::ports::reserve(&self.store(), id, &name, &mappings) {
            Ok(r) => r,
            Err(e) => {
                say(&format!("error: {e}"));
                return Ok(());
            }
        };
        let sockets = held.into_sockets();
        // It lives as long as the container: the database is not held open.
        self.close_store_for_fork();
        // Still one thread: the threads made from here on are in the
        // namespace too (so are the sockets they make); the bound host
        // sockets stay the host's.
        if let Err(e) = enter(netns) {
            say(&format!("error: {e}"));
            return Ok(());
        }
        say("ready");
        let mut threads = Vec::new();
        for (socket, (_, target)) in sockets.into_iter().zip(parsed) {
            tracing::debug!(%target, "forwarding");
            threads.push(match socket {
                crate::ports::Held::Tcp(l) => std::thread::spawn(move || accept_loop(l, target)),
                crate::ports::Held::Udp(u) => std::thread::spawn(move || udp::serve(u, target)),
            });
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(())
    }
}

fn accept_loop(l: std::net::TcpListener, target: std::net::SocketAddr) {
    for conn in l.incoming() {
        let Ok(client) = conn else { continue };
        std::thread::spawn(move || relay(client, target));
    }
}

/// Copy both ways until each side has said all it had.
fn relay(client: std::net::TcpStream, target: std::net::SocketAddr) {
    let Ok(server) = std::net::TcpStream::connect(target) else {
        return;
    };
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let mut c = client;
        let mut s = server;
        let _ = std::io::copy(&mut c, &mut s);
        let _ = s.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut s2, &mut c2);
    let _ = c2.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

/// UDP forwarding as docker-proxy and rootlesskit's port driver do it:
/// datagrams from each client address (a "session") go out of a socket
/// of their own, connected to the container's address, and what comes
/// back on it is sent to that client from the published port. A session
/// nobody has used for [`udp::IDLE`] is closed.
mod udp {
    use std::collections::HashMap;
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// How long a session lives without a datagram either way (docker-proxy
    /// and rootlesskit: `UDPConnTrackTimeout`, 90 s).
    pub(super) const IDLE: Duration = Duration::from_secs(90);

    /// The largest UDP payload over IPv4.
    const BUF: usize = 65507;

    /// Sessions at once; datagrams from further clients are dropped until
    /// one ends (each holds a socket and a thread).
    const MAX_SESSIONS: usize = 1024;

    struct Session {
        socket: UdpSocket,
        last: Instant,
    }

    type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

    /// Relay datagrams arriving on `host` to `target` until `host` fails.
    /// Called on a thread in the namespace of `target`.
    pub(super) fn serve(host: UdpSocket, target: SocketAddr) {
        let sessions: Sessions = Arc::default();
        let mut buf = vec![0u8; BUF];
        loop {
            let (n, client) = match host.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(%target, "the published UDP port stopped: {e}");
                    return;
                }
            };
            let mut table = sessions.lock().unwrap_or_else(|p| p.into_inner());
            if !table.contains_key(&client) {
                if table.len() >= MAX_SESSIONS {
                    continue;
                }
                match open(&host, client, target, &sessions) {
                    Ok(socket) => {
                        table.insert(
                            client,
                            Session {
                                socket,
                                last: Instant::now(),
                            },
                        );
                    }
                    Err(e) => {
                        tracing::debug!(%client, %target, "no UDP session: {e}");
                        continue;
                    }
                }
            }
            if let Some(s) = table.get_mut(&client) {
                s.last = Instant::now();
                // Refused (nothing listens yet) or dropped: UDP's loss.
                let _ = s.socket.send(&buf[..n]);
            }
        }
    }

    /// A session's socket, connected to `target`, with its thread sending
    /// the replies back to `client`.
    fn open(
        host: &UdpSocket,
        client: SocketAddr,
        target: SocketAddr,
        sessions: &Sessions,
    ) -> std::io::Result<UdpSocket> {
        let any: SocketAddr = match target {
            SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any)?;
        socket.connect(target)?;
        let back = socket.try_clone()?;
        let host = host.try_clone()?;
        let sessions = Arc::clone(sessions);
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || replies(back, host, client, &sessions))?;
        Ok(socket)
    }

    /// Send what the container answers to `client` until the session has
    /// been idle for [`IDLE`]; then forget it.
    fn replies(socket: UdpSocket, host: UdpSocket, client: SocketAddr, sessions: &Sessions) {
        let mut buf = vec![0u8; BUF];
        let mut wait = IDLE;
        loop {
            let _ = socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let _ = host.send_to(&buf[..n], client);
                    touch(sessions, client);
                    wait = IDLE;
                    continue;
                }
                // An ICMP port unreachable for an earlier datagram:
                // nothing listened then; later ones may be answered.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&client);
                    return;
                }
            }
            // Timed out: closed unless the client sent meanwhile.
            let mut table = sessions.lock().unwrap_or_else(|p| p.into_inner());
            let idle = table.get(&client).map_or(IDLE, |s| s.last.elapsed());
            if idle >= IDLE {
                table.remove(&client);
                return;
            }
            wait = IDLE - idle;
        }
    }

    fn touch(sessions: &Sessions, client: SocketAddr) {
        if let Some(s) = sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&client)
        {
            s.last = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_goes_and_comes_back() {
        let p = crate::config::PortMapping {
            host_ip: "127.0.0.1".into(),
            host_port: 8080,
            container_port: 80,
            proto: "tcp".into(),
            picked: false,
        };
        let s = proxy_spec(&p, [10, 89, 0, 2].into());
        assert_eq!(s, "127.0.0.1|8080|10.89.0.2|80|tcp");
        let (back, target) = parse_spec(&s).unwrap();
        assert_eq!(back.host_port, 8080);
        assert_eq!(back.host_ip, "127.0.0.1");
        assert_eq!(target, "10.89.0.2:80".parse().unwrap());
        let any = parse_spec("|8080|10.89.0.2|80|tcp").unwrap().0;
        assert_eq!(any.host_ip, "");
    }

    #[test]
    fn udp_answers_go_back_to_each_client() {
        use std::net::UdpSocket;
        // An echo server naming the address it saw: each client's
        // datagrams leave through a session socket of its own.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                let mut answer = buf[..n].to_vec();
                answer.extend_from_slice(format!(" from {}", from.port()).as_bytes());
                let _ = server.send_to(&answer, from);
            }
        });
        let host = UdpSocket::bind("127.0.0.1:0").unwrap();
        let published = host.local_addr().unwrap();
        std::thread::spawn(move || udp::serve(host, target));
        let clients: Vec<UdpSocket> = (0..2)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut seen = Vec::new();
        for round in 0..2 {
            for (i, c) in clients.iter().enumerate() {
                c.send_to(format!("{i}.{round}").as_bytes(), published)
                    .unwrap();
            }
            for (i, c) in clients.iter().enumerate().rev() {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 512];
                let (n, from) = c.recv_from(&mut buf).unwrap();
                assert_eq!(from, published);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (said, port) = text.split_once(" from ").unwrap();
                assert_eq!(said, format!("{i}.{round}"));
                seen.push((i, port.to_string()));
            }
        }
        // A session per client, kept between datagrams.
        let port_of = |i| {
            let ports: Vec<&String> = seen.iter().filter(|s| s.0 == i).map(|s| &s.1).collect();
            assert_eq!(ports[0], ports[1]);
            ports[0].clone()
        };
        assert_ne!(port_of(0), port_of(1));
    }
}
