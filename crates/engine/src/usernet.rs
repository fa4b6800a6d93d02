//! Rootless networking: a user-mode network stack outside the container
//! gives it a way out, as podman does — `slirp4netns` (the default of
//! Debian's podman 4.3 and of Docker's rootless mode, and berth's when
//! installed) or `pasta` (Debian's `passt`, podman 5's default; berth's
//! without slirp4netns, or with `--network pasta` or berth.toml's
//! `default_rootless_network_cmd`). Neither needs the host's root: no bridge, no veth, no firewall rule. Published ports are
//! the tool's own forwards (it listens on the host and connects inside the
//! container's namespace), but for slirp4netns' UDP ports, which are
//! rootless berth's port proxy's (`rootlessnet`; see [`Launched::finish`]).
//!
//! The tool runs as a child of the container's monitor, started on a
//! network namespace the monitor makes before the container's init exists
//! (the init joins it), so that the tool's start overlaps the container's
//! setup; the init execs its command only once the tool says the namespace
//! is configured. Its pid is kept in `<runroot>/<id>.net.pid` and it is
//! ended when the container stops (`networks::detach`).
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::PortMapping;

/// The user-mode network tool of a container (`--network pasta|slirp4netns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// passt's `pasta`.
    Pasta,
    /// `slirp4netns`.
    Slirp4netns,
}

impl Tool {
    /// The `--network` word (and `HostConfig.NetworkMode`, as podman shows it).
    pub fn name(self) -> &'static str {
        match self {
            Tool::Pasta => "pasta",
            Tool::Slirp4netns => "slirp4netns",
        }
    }

    /// From a `--network` word.
    pub fn from_name(name: &str) -> Option<Tool> {
        match name {
            "pasta" => Some(Tool::Pasta),
            "slirp4netns" => Some(Tool::Slirp4netns),
            _ => None,
        }
    }

    /// Its binary, if installed: looked up on `$PATH`, as podman looks up
    /// its network helpers (so a `PATH` without pasta makes slirp4netns
    /// the default), or in the usual dirs when there is no `PATH`.
    pub fn binary(self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin".into()
            });
        std::env::split_paths(&path)
            .map(|d| d.join(self.name()))
            .find(|p| p.is_file())
    }

    /// Its binary, once it is known to be able to run here: installed,
    /// and `/dev/net/tun` open to this user (its end inside is a tap
    /// device; udev makes it 0666 on Debian, some hosts leave it 0600).
    /// `what` names what needs it and `otherwise` what the user may do
    /// instead, for the messages.
    pub(crate) fn usable(self, what: &str, otherwise: &str) -> Result<PathBuf, String> {
        let bin = self.binary().ok_or_else(|| {
            format!(
                "{what} needs {}, which is not installed (as root: apt-get install {}){otherwise}",
                self.name(),
                self.package()
            )
        })?;
        nix::unistd::access(
            "/dev/net/tun",
            nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
        )
        .map_err(|e| {
            format!(
                "{what} needs {}, which needs /dev/net/tun, and this user cannot open it ({e}): the host must let users open it (as root: chmod 0666 /dev/net/tun, udev's default){otherwise}",
                self.name()
            )
        })?;
        Ok(bin)
    }

    /// [`Tool::usable`] for a container's own network.
    pub(crate) fn for_own_network(self) -> Result<PathBuf, String> {
        self.usable(
            "a rootless container's own network",
            "; or run it with --network none or host",
        )
    }

    /// [`Tool::usable`] for the rootless network namespace's way out.
    pub(crate) fn for_user_networks(self) -> Result<PathBuf, String> {
        self.usable("the way out of rootless berth's user-defined networks", "")
    }

    /// Its Debian package, for the message when it is missing.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Pasta => "passt",
            Tool::Slirp4netns => "slirp4netns",
        }
    }
}

/// The default rootless network without a `default_rootless_network_cmd`
/// in berth.toml: slirp4netns if installed, else pasta — the order of
/// Debian's podman 4.3 and of Docker's rootless mode (podman 5 prefers
/// pasta: its start costs ~20 ms more here, see bench/RESULTS.md);
/// slirp4netns (whose absence is then reported) when neither is.
pub fn default_tool() -> Tool {
    [Tool::Slirp4netns, Tool::Pasta]
        .into_iter()
        .find(|t| t.binary().is_some())
        .unwrap_or(Tool::Slirp4netns)
}

/// The container's address behind slirp4netns (`--configure`).
const SLIRP_GUEST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);

/// slirp4netns' DNS forwarder, the container's resolver behind it.
pub(crate) const SLIRP_DNS: &str = "10.0.2.3";

/// Where the tool's pid is kept.
pub(crate) fn pid_file(runroot: &Path, id: &str) -> PathBuf {
    runroot.join(format!("{id}.net.pid"))
}

/// `-t`/`-u` specs of pasta for the published ports of one protocol:
/// `[ADDR/]HOST:CONTAINER`, comma-separated; `none` without any.
pub fn pasta_ports(ports: &[PortMapping], proto: &str) -> String {
    let specs: Vec<String> = ports
        .iter()
        .filter(|p| p.proto == proto)
        .map(|p| {
            let addr = match p.host_ip.as_str() {
                "" | "0.0.0.0" | "::" => String::new(),
                ip => format!("{ip}/"),
            };
            format!("{addr}{}:{}", p.host_port, p.container_port)
        })
        .collect();
    if specs.is_empty() {
        "none".into()
    } else {
        specs.join(",")
    }
}

/// The file the container's network namespace is bound on.
fn netns_file(runroot: &Path, id: &str) -> PathBuf {
    runroot.join("netns").join(id)
}

/// A new network namespace, bound on `file`: a child cloned into it binds
/// its own `/proc/self/ns/net` there and exits (the monitor itself could
/// not come back to the host's namespace, which is not its user
/// namespace's). The container's init joins it by path.
fn make_netns(file: &Path) -> Result<(), String> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file)
        .map_err(|e| format!("creating {}: {e}", file.display()))?;
    match sys::process::clone_fork(libc::CLONE_NEWNET)
        .map_err(|e| format!("creating a network namespace: {e}"))?
    {
        sys::process::Forked::Child => {
            let bound = nix::mount::mount(
                Some(Path::new("/proc/self/ns/net")),
                file,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            );
            sys::process::exit_now(if bound.is_ok() { 0 } else { 1 })
        }
        sys::process::Forked::Parent(pid) => {
            use nix::sys::wait::{waitpid, WaitStatus};
            match waitpid(nix::unistd::Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                other => {
                    let _ = std::fs::remove_file(file);
                    Err(format!(
                        "binding the network namespace on {}: {other:?}",
                        file.display()
                    ))
                }
            }
        }
    }
}

/// A container's network tool, started on a namespace of its own before
/// the container's init exists (so that the tool's start overlaps the
/// container's setup). The init joins [`Launched::netns`].
pub(crate) struct Launched {
    tool: Tool,
    child: std::process::Child,
    netns: PathBuf,
    /// pasta: the pipe its pid "file" is, written once the namespace is
    /// configured; the runtime's exec gate. slirp4netns: its ready fd.
    ready: Option<OwnedFd>,
    api: PathBuf,
}

/// Start `tool` for container `id` on a new network namespace, publishing
/// `ports`. Returns at once; the namespace is ready when
/// [`Launched::gate`]'s pipe (pasta) or [`Launched::finish`]
/// (slirp4netns) says so.
pub(crate) fn launch(
    tool: Tool,
    runroot: &Path,
    id: &str,
    ports: &[PortMapping],
) -> Result<Launched, String> {
    let bin = tool.for_own_network()?;
    let pid_path = pid_file(runroot, id);
    let _ = std::fs::remove_file(&pid_path);
    // pasta drops its capabilities before it opens the namespace, and the
    // kernel lets a process open another's /proc/PID/ns/* only if it holds
    // every capability the other does: the namespace is bound on a file
    // of the runroot instead (as podman does), opened without that check.
    let netns = netns_file(runroot, id);
    make_netns(&netns)?;
    let api = api_socket(runroot, id);
    let spawned = match tool {
        Tool::Pasta => spawn_pasta(&bin, &netns, ports),
        Tool::Slirp4netns => spawn_slirp(&bin, &netns, Some(&api)),
    };
    let (child, ready) = match spawned {
        Ok(s) => s,
        Err(e) => {
            let _ = nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&netns);
            return Err(e);
        }
    };
    let launched = Launched {
        tool,
        child,
        netns,
        ready: Some(ready),
        api,
    };
    std::fs::write(&pid_path, launched.child.id().to_string())
        .map_err(|e| format!("writing {}: {e}", pid_path.display()))?;
    Ok(launched)
}

/// pasta in the foreground (`-f`), a child of the monitor in a process
/// group of its own: no daemon fork to wait for. Its `-P` pid file is the
/// write end of a pipe (`/proc/self/fd/N`), which pasta writes only after
/// it has configured the namespace (address, routes, lo up) and bound the
/// published ports: that line is the ready signal. `-4`: the container's
/// IPv6 is off (`disable_ipv6`, as for every berth container without an
/// IPv6 network), so pasta's IPv6 setup would be undone anyway; skipping
/// it is a third of pasta's start.
fn spawn_pasta(
    bin: &Path,
    netns: &Path,
    ports: &[PortMapping],
) -> Result<(std::process::Child, OwnedFd), String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // The write end is inherited (not close-on-exec); the read end is not.
    // The monitor is single-threaded, so no other child inherits them.
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    nix::fcntl::fcntl(
        &ready_r,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| format!("creating a pipe: {e}"))?;
    let child = std::process::Command::new(bin)
        .arg("--config-net")
        .arg("--quiet")
        .arg("--foreground")
        .arg("--ipv4-only")
        .args(["-t", &pasta_ports(ports, "tcp")])
        .args(["-u", &pasta_ports(ports, "udp")])
        .args(["-T", "none", "-U", "none"])
        .arg("-P")
        .arg(format!("/proc/self/fd/{}", ready_w.as_raw_fd()))
        .arg("--netns")
        .arg(netns)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    drop(ready_w);
    Ok((child, ready_r))
}

/// slirp4netns stays in the foreground: a child of the monitor in a
/// process group of its own, saying on `--ready-fd` when the namespace is
/// configured (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3); with `api`,
/// it takes port forwards on that socket. Also the rootless network
/// namespace's way out (`rootlessnet`), without one.
pub(crate) fn spawn_slirp(
    bin: &Path,
    netns: &Path,
    api: Option<&Path>,
) -> Result<(std::process::Child, OwnedFd), String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    if let Some(api) = api {
        if api.as_os_str().len() > 107 {
            return Err(format!(
                "slirp4netns' API socket {} would be longer than a socket's path may be: use a shorter --runroot or XDG_RUNTIME_DIR",
                api.display()
            ));
        }
        let _ = std::fs::remove_file(api);
    }
    // Not close-on-exec: the write end is slirp4netns' ready fd. The
    // caller is single-threaded (the monitor), or spawns it on the one
    // thread that is in the namespace, so no other child inherits it.
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    let mut cmd = std::process::Command::new(bin);
    // `--enable-sandbox` (a mount namespace of its own, pivoted into an
    // empty root, capabilities dropped) and `--enable-seccomp` (a syscall
    // filter), as podman runs it: slirp's packet parsing has had its CVEs.
    cmd.arg("--configure")
        .arg("--mtu=65520")
        .arg("--disable-host-loopback")
        .arg("--enable-sandbox")
        .arg("--enable-seccomp")
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()));
    if let Some(api) = api {
        cmd.arg(format!("--api-socket={}", api.display()));
    }
    let child = cmd
        .arg("--netns-type=path")
        .arg(netns)
        .arg("tap0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    drop(ready_w);
    Ok((child, ready_r))
}

impl Launched {
    /// The namespace the container's init joins.
    pub(crate) fn netns(&self) -> &Path {
        &self.netns
    }

    /// pasta's ready pipe, for the runtime to hold the container's
    /// command until the namespace is configured
    /// ([`runtime::SpawnRequest::exec_gate`]).
    pub(crate) fn gate(&mut self) -> Option<OwnedFd> {
        match self.tool {
            Tool::Pasta => self.ready.take(),
            Tool::Slirp4netns => None,
        }
    }

    /// Wait until the namespace is configured and the ports published
    /// (slirp4netns: its ready fd, then one `add_hostfwd` request per TCP
    /// port on its API socket, and berth's port proxy for the UDP ports;
    /// pasta: the gate does the waiting).
    ///
    /// Not slirp4netns' own UDP forwards: with `--disable-host-loopback`
    /// it drops the answers to a client on the host's loopback (they go to
    /// 10.0.2.2, the host's 127.0.0.1 seen from inside), so a UDP port
    /// published on 127.0.0.1 would never answer. The proxy (podman's
    /// default for slirp4netns is rootlesskit's, the same idea) relays
    /// them from inside the container's namespace to 10.0.2.100.
    pub(crate) fn finish(
        &mut self,
        paths: &crate::Paths,
        id: &str,
        ports: &[PortMapping],
    ) -> Result<(), String> {
        use std::io::{Read, Write};
        if self.tool != Tool::Slirp4netns {
            return Ok(());
        }
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let mut byte = [0u8; 1];
        if !matches!(std::fs::File::from(ready).read(&mut byte), Ok(1)) {
            return Err("slirp4netns exited before the network was configured".into());
        }
        for p in ports.iter().filter(|p| p.proto != "udp") {
            let host_addr = match p.host_ip.as_str() {
                "" => "0.0.0.0",
                ip => ip,
            };
            let req = serde_json::json!({
                "execute": "add_hostfwd",
                "arguments": {
                    "proto": p.proto,
                    "host_addr": host_addr,
                    "host_port": p.host_port,
                    "guest_port": p.container_port,
                }
            });
            let answer = (|| -> std::io::Result<String> {
                let mut s = std::os::unix::net::UnixStream::connect(&self.api)?;
                s.write_all(req.to_string().as_bytes())?;
                s.shutdown(std::net::Shutdown::Write)?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer)
            })()
            .map_err(|e| format!("slirp4netns' API socket: {e}"))?;
            if answer.contains("\"error\"") {
                return Err(format!(
                    "slirp4netns refused to publish {host_addr}:{}: {}",
                    p.host_port,
                    answer.trim()
                ));
            }
        }
        let udp: Vec<String> = ports
            .iter()
            .filter(|p| p.proto == "udp")
            .map(|p| crate::rootlessnet::proxy_spec(p, SLIRP_GUEST))
            .collect();
        if !udp.is_empty() {
            crate::rootlessnet::start_proxy(paths, id, &self.netns, &udp)?;
        }
        Ok(())
    }

    /// Why the start failed, in the tool's own words (pasta's stderr: a
    /// published port already taken, say), once it has exited: called when
    /// the runtime's gate was closed, so it is exiting already.
    pub(crate) fn failure(&mut self) -> String {
        use std::io::Read;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut status = None;
        // Started early (`EarlyNet`), the tool is the CLI's child, not
        // ours: gone is all that can be told.
        let mut gone = false;
        while !gone && Instant::now() < deadline {
            status = self.child.try_wait().ok().flatten();
            gone = status.is_some() || !running(self.child.id() as i32);
            if !gone {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut err = String::new();
        if let (true, Some(mut e)) = (gone, self.child.stderr.take()) {
            let _ = e.read_to_string(&mut err);
        }
        let err: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
            .collect();
        let status = match (status, gone) {
            (Some(s), _) => s.to_string(),
            (None, true) => "exited".into(),
            (None, false) => "still running".into(),
        };
        format!("{} failed ({status}): {}", self.tool.name(), err.join("; "))
    }

    /// The container is running: the tool's stderr is no longer read
    /// (pasta ignores SIGPIPE), and the process is left to
    /// [`stop`], which finds it by its pid file.
    pub(crate) fn release(mut self) {
        drop(self.child.stderr.take());
    }
}

/// A rootless container's network started before the container is
/// created (`berth run`, [`crate::Engine::early_user_net`]): pasta's own
/// start (~18 ms here, most of a rootless start) then overlaps the
/// create and the monitor's fork as well as the container's setup. The
/// container gets [`EarlyNet::id`]; its start hands the tool to the
/// monitor. Dropped without that (a create that failed, a start that never
/// forked), it ends the tool and unbinds the namespace.
pub struct EarlyNet {
    runroot: PathBuf,
    id: model::ContainerId,
    tool: Tool,
    launched: Option<Launched>,
    armed: bool,
}

impl EarlyNet {
    /// The id the container is created with.
    pub fn id(&self) -> &model::ContainerId {
        &self.id
    }

    /// The started tool, for the monitor of container `id` on `tool`'s
    /// network; `None` (and the early one ended) for any other.
    pub(crate) fn take_for(
        &mut self,
        id: &model::ContainerId,
        tool: Option<Tool>,
    ) -> Option<Launched> {
        if *id == self.id && tool == Some(self.tool) {
            self.launched.take()
        } else {
            self.end();
            None
        }
    }

    /// The monitor has it now.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    fn end(&mut self) {
        if std::mem::take(&mut self.armed) {
            drop(self.launched.take());
            stop(&self.runroot, self.id.as_str(), false);
        }
    }
}

impl Drop for EarlyNet {
    fn drop(&mut self) {
        self.end();
    }
}

impl crate::Engine {
    /// Start the network of the container `req` is about to create, when
    /// it is rootless berth's default (pasta) with no published ports,
    /// outside any pod, from a single-threaded process: `None` otherwise
    /// (and on any failure: the monitor then starts it as usual, and says
    /// what is wrong).
    pub fn early_user_net(
        &self,
        req: &crate::container::create::CreateRequest,
    ) -> Option<EarlyNet> {
        if !crate::rootless::active()
            || req.network != crate::config::NetworkMode::None
            || !req.ports.is_empty()
            || req.publish_all
            || !matches!(req.pod, crate::container::create::PodMembership::None)
        {
            return None;
        }
        let tool = match req.networks.as_slice() {
            [n] if n == "bridge" || n == "default" => {
                crate::settings::Settings::load(&self.paths().config)
                    .ok()?
                    .rootless_network_tool()
                    .ok()?
            }
            [n] => Tool::from_name(n)?,
            _ => return None,
        };
        if tool != Tool::Pasta || !sys::process::thread_count().is_ok_and(|n| n == 1) {
            return None;
        }
        let id = model::ContainerId::random();
        let launched = launch(tool, &self.paths().runroot, id.as_str(), &[]).ok()?;
        Some(EarlyNet {
            runroot: self.paths().runroot.clone(),
            id,
            tool,
            launched: Some(launched),
            armed: true,
        })
    }
}

/// The API socket: a short name (a socket's path must fit in 108 bytes).
fn api_socket(runroot: &Path, id: &str) -> PathBuf {
    runroot.join(format!("{}.slirp", &id[..id.len().min(12)]))
}

/// End the container's network tool, if it has one (best effort). With
/// `published` ports it waits a little for the tool to be gone, so the
/// ports are free again when the container's removal returns; without, it
/// does not: pasta's exit (its tap device unregistered, ~40 ms here) is
/// nobody's business, and the process is gone moments later.
pub(crate) fn stop(runroot: &Path, id: &str, published: bool) {
    // Unbound and removed, the namespace's file tells pasta to quit.
    let ns_file = netns_file(runroot, id);
    let _ = nix::mount::umount2(&ns_file, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&ns_file);
    let path = pid_file(runroot, id);
    let Some(pid) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if matches!(
        comm.trim(),
        "pasta" | "pasta.avx2" | "passt" | "passt.avx2" | "slirp4netns"
    ) {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        // The tool is the monitor's child: reaped here when it is.
        let gone = || {
            use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
            matches!(
                waitpid(pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..))
            ) || !running(pid.as_raw())
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while published && !gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(api_socket(runroot, id));
}

/// Alive and not a zombie (pasta, once it exits, waits for init to
/// reap it; that may take a while and must not hold the teardown).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: &str, host: u16, ctr: u16, proto: &str) -> PortMapping {
        PortMapping {
            host_ip: ip.into(),
            host_port: host,
            container_port: ctr,
            proto: proto.into(),
            picked: false,
        }
    }

    #[test]
    fn pasta_forwards_each_published_port() {
        let ports = [
            port("127.0.0.1", 8080, 80, "tcp"),
            port("", 5353, 53, "udp"),
            port("0.0.0.0", 2222, 22, "tcp"),
        ];
        assert_eq!(pasta_ports(&ports, "tcp"), "127.0.0.1/8080:80,2222:22");
        assert_eq!(pasta_ports(&ports, "udp"), "5353:53");
        assert_eq!(pasta_ports(&[], "tcp"), "none");
    }
}
