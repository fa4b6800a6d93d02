//! One file per group of verbs; each builds a typed request and calls the engine.
use clap::Subcommand;

use crate::Failure;

mod build;
mod compose;
mod container;
pub mod distribution;
mod fs;
mod image;
mod kube;
mod network;
mod pod;
mod registry;
mod scan;
mod serve;
mod sign;
mod supply;
pub(crate) mod system;
mod volume;

pub use container::CreateArgs;

/// Every berth command.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and start a container from an image.
    Run(CreateArgs),
    /// Create a container without starting it.
    Create(CreateArgs),
    /// Start stopped containers.
    Start(container::StartArgs),
    /// List containers.
    Ps(container::PsArgs),
    /// Show a container's output.
    Logs(container::LogsArgs),
    /// Run a command in a running container.
    Exec(container::ExecArgs),
    /// Stop running containers (stop signal, then SIGKILL after the timeout).
    Stop(container::StopArgs),
    /// Send a signal to running containers.
    Kill(container::KillArgs),
    /// Restart containers.
    Restart(container::StopArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(container::NamesArgs),
    /// Remove containers.
    Rm(container::RmArgs),
    /// Show low-level information on containers or images.
    Inspect(container::InspectArgs),
    /// Attach to a running container's output (and input with -i).
    Attach(container::AttachArgs),
    /// Rename a container.
    Rename(container::RenameArgs),
    /// Show the processes of a container.
    Top(container::TopArgs),
    /// List a container's published ports.
    Port(container::PortArgs),
    /// Copy files between a container and the host.
    Cp(fs::CpArgs),
    /// Live resource use of containers (CPU, memory, network, block I/O, pids).
    Stats(system::StatsArgs),
    /// Freeze every process of containers (cgroup freezer).
    Pause(container::NamesArgs),
    /// Thaw paused containers.
    Unpause(container::NamesArgs),
    /// Change containers' limits (live when running) and restart policy.
    Update(container::UpdateArgs),
    /// Stream what happens in this berth (containers, images, networks, volumes).
    Events(system::EventsArgs),
    /// Build an image from a Dockerfile and a context directory.
    Build(build::BuildArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(build::BuilderCommand),
    /// List the changes to a container's filesystem.
    Diff(fs::DiffArgs),
    /// Write a container's filesystem as a tar archive.
    Export(fs::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(fs::CommitArgs),
    /// List images.
    Images(image::ImagesArgs),
    /// Create a tag that refers to an image.
    Tag(image::TagArgs),
    /// Remove images.
    Rmi(image::RmiArgs),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// List an image's packages (SBOM) from its layers, without running it.
    Sbom(supply::SbomArgs),
    /// Find known vulnerabilities in an image's packages (a local OSV database; scan db update|import).
    Scan(scan::ScanArgs),
    /// Manage signing keys (cosign's format).
    #[command(subcommand)]
    Key(sign::KeyCommand),
    /// Sign an image in its registry with a key (cosign-compatible).
    Sign(sign::SignArgs),
    /// Verify an image's signatures in its registry with a public key.
    Verify(sign::VerifyArgs),
    /// Attach a signed in-toto attestation (SLSA provenance, SBOM, …) to an image.
    Attest(sign::AttestArgs),
    /// Verify an image's attestations with a public key.
    VerifyAttestation(sign::VerifyAttestationArgs),
    /// Create an image from a root filesystem tarball.
    Import(image::ImportArgs),
    /// Load images from a docker-archive or OCI-layout tar.
    Load(image::LoadArgs),
    /// Save images to a docker-archive or OCI-layout tar.
    Save(image::SaveArgs),
    /// Download an image from a registry.
    Pull(distribution::PullArgs),
    /// Upload an image to a registry.
    Push(distribution::PushArgs),
    /// Log in to a registry.
    Login(distribution::LoginArgs),
    /// Log out from a registry.
    Logout(distribution::LogoutArgs),
    /// Show the version of berth (client and engine).
    Version(system::AboutArgs),
    /// Show system-wide information.
    Info(system::AboutArgs),
    /// The DNS responder of a network (started by berth itself).
    #[command(hide = true)]
    DnsServe {
        /// Network id.
        network: String,
    },
    /// The published ports of a rootless container on a user-defined
    /// network, or its UDP ports on slirp4netns (started by berth itself).
    #[command(hide = true)]
    PortProxy {
        /// The network namespace the container's address is reached in.
        #[arg(long)]
        netns: std::path::PathBuf,
        /// Container id.
        container: String,
        /// `HOST_IP|HOST_PORT|CONTAINER_IP|CONTAINER_PORT|PROTO` each.
        ports: Vec<String>,
    },
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage pods (podman's): containers sharing network, IPC and UTS namespaces.
    #[command(subcommand)]
    Pod(pod::PodCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage berth itself.
    #[command(subcommand)]
    System(SystemCommand),
    /// Run a command in rootless berth's user namespace (podman's
    /// `unshare`): as its root, with the user's subordinate ids mapped.
    Unshare {
        /// The command and its arguments (default: $SHELL).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage containers.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Define and run multi-container applications (the Compose Specification).
    Compose(compose::ComposeArgs),
    /// Kubernetes YAML from containers or a compose project.
    #[command(subcommand)]
    Kube(kube::KubeCommand),
    /// Run berth's OCI distribution registry.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Serve the Docker Engine API (DOCKER_HOST=unix://…/docker.sock).
    Serve(serve::ServeArgs),
    /// One engine call of `serve` that forks, run in a process of its own
    /// (arguments as JSON on stdin, the answer on stdout).
    #[command(name = "__api-op", hide = true)]
    ApiOp {
        /// The operation.
        op: String,
    },
}

/// `system` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SystemCommand {
    /// Remove every container and network of this berth (bridges and
    /// firewall rules too), then all of its state (--root, --runroot).
    Reset {
        /// Do not ask.
        #[arg(short, long)]
        force: bool,
    },
    /// Show disk usage of images, containers, volumes and build cache.
    Df(system::DfArgs),
    /// Remove stopped containers, unused networks, dangling images (and
    /// anonymous volumes with --volumes).
    Prune(system::SystemPruneArgs),
    /// Start the containers whose restart policy says they should run
    /// (at boot: see the systemd unit in README.md).
    Boot,
    /// Check the store and what this berth left on the host (processes,
    /// cgroups, mounts, interfaces, rules, leases, work dirs); --repair
    /// fixes what is berth's alone.
    Check(system::CheckArgs),
    /// Show the event stream (same as `berth events`).
    Events(system::EventsArgs),
    /// Show system-wide information (same as `berth info`).
    Info(system::AboutArgs),
}

/// Run a parsed command. As docker's CLI: an engine error fails `run` with
/// 125 and every other command with 1; a bad flag or argument is 125
/// everywhere.
pub fn dispatch(paths: engine::Paths, cmd: Command) -> Result<(), Failure> {
    let is_run = matches!(
        cmd,
        Command::Run(_) | Command::Container(container::ContainerCommand::Run(_))
    );
    // `create --pod` is podman's: its errors exit 125.
    let is_run = is_run || matches!(&cmd, Command::Create(a) if a.in_pod());
    // `scan --exit-code 125` with findings exits 125 as asked.
    let is_scan = matches!(cmd, Command::Scan(_));
    // podman's CLI, whose verbs these are, exits 125 for engine errors.
    let is_pod = matches!(cmd, Command::Pod(_) | Command::Kube(_));
    run_command(paths, cmd).map_err(|mut f| {
        let asked_for = is_scan && f.message.is_none();
        if f.code == 125 && !f.usage && !is_run && !asked_for && !is_pod {
            f.code = 1;
        }
        f
    })
}

fn run_command(paths: engine::Paths, cmd: Command) -> Result<(), Failure> {
    // The server opens an engine per worker thread.
    let cmd = match cmd {
        Command::Serve(a) => return serve::serve(paths, a),
        Command::ApiOp { op } => std::process::exit(api::op_main(paths, &op)),
        // The registry serves its own directory: no store to open.
        Command::Registry(c) => return registry::dispatch(paths, c),
        // Keys are files of the user's: no store either.
        Command::Key(c) => return sign::key(c),
        Command::Unshare { command } => {
            let e = engine::rootless::unshare(&paths, &command);
            return Err(match e {
                engine::EngineError::Io { ref source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Failure::msg(127, e.to_string())
                }
                engine::EngineError::Io { .. } => Failure::msg(126, e.to_string()),
                e => e.into(),
            });
        }
        other => other,
    };
    let engine = engine::Engine::open(paths)?;
    match cmd {
        Command::Run(a) => container::run(&engine, a, true),
        Command::Compose(a) => compose::compose(&engine, a),
        Command::Kube(c) => kube::dispatch(&engine, c),
        Command::Serve(_)
        | Command::ApiOp { .. }
        | Command::Registry(_)
        | Command::Key(_)
        | Command::Unshare { .. } => {
            unreachable!("served before an engine is opened")
        }
        Command::Create(a) => container::run(&engine, a, false),
        Command::Start(a) => container::start(&engine, a),
        Command::Ps(a) => container::ps(&engine, a),
        Command::Logs(a) => container::logs(&engine, a),
        Command::Exec(a) => container::exec(&engine, a),
        Command::Stop(a) => container::stop(&engine, a, false),
        Command::Restart(a) => container::stop(&engine, a, true),
        Command::Kill(a) => container::kill(&engine, a),
        Command::Wait(a) => container::wait(&engine, a),
        Command::Rm(a) => container::rm(&engine, a),
        Command::Inspect(a) => container::inspect(&engine, a),
        Command::Attach(a) => container::attach(&engine, a),
        Command::Rename(a) => container::rename(&engine, a),
        Command::Top(a) => container::top(&engine, a),
        Command::Port(a) => container::port(&engine, a),
        Command::Cp(a) => fs::cp(&engine, a),
        Command::Stats(a) => system::stats(&engine, a),
        Command::Build(a) => build::build(&engine, a),
        Command::Builder(build::BuilderCommand::Prune(a)) => build::prune(&engine, a),
        Command::Builder(build::BuilderCommand::Build(a)) => build::build(&engine, *a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            system::events(&engine, a)
        }
        Command::System(SystemCommand::Boot) => system::boot(&engine),
        Command::Pause(a) => container::pause(&engine, a),
        Command::Unpause(a) => container::unpause(&engine, a),
        Command::Update(a) => container::update(&engine, a),
        Command::Diff(a) => fs::diff(&engine, a),
        Command::Export(a) => fs::export(&engine, a),
        Command::Commit(a) => fs::commit(&engine, a),
        Command::Images(a) => image::images(&engine, a),
        Command::Tag(a) => image::tag(&engine, a),
        Command::Rmi(a) => image::rmi(&engine, a),
        Command::History(a) => image::history(&engine, a),
        Command::Sbom(a) => supply::sbom(&engine, a),
        Command::Scan(a) => scan::scan(&engine, a),
        Command::Sign(a) => sign::sign(&engine, a),
        Command::Verify(a) => sign::verify(&engine, a),
        Command::Attest(a) => sign::attest(&engine, a),
        Command::VerifyAttestation(a) => sign::verify_attestation(&engine, a),
        Command::Import(a) => image::import(&engine, a),
        Command::Load(a) => image::load(&engine, a),
        Command::Save(a) => image::save(&engine, a),
        Command::Pull(a) => distribution::pull(&engine, a),
        Command::Push(a) => distribution::push(&engine, a),
        Command::Login(a) => distribution::login(&engine, a),
        Command::Logout(a) => distribution::logout(&engine, a),
        Command::Network(c) => network::dispatch(&engine, c),
        Command::Volume(c) => volume::dispatch(&engine, c),
        Command::Pod(c) => pod::dispatch(&engine, c),
        Command::DnsServe { network } => Ok(engine.serve_dns(&network)?),
        Command::PortProxy {
            netns,
            container,
            ports,
        } => Ok(engine.serve_ports(&container, &netns, &ports)?),
        Command::System(SystemCommand::Df(a)) => system::df(&engine, a),
        Command::Version(a) => system::version(&engine, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(&engine, a),
        Command::System(SystemCommand::Prune(a)) => system::system_prune(&engine, a),
        Command::System(SystemCommand::Check(a)) => system::check(&engine, a),
        Command::System(SystemCommand::Reset { force }) => {
            if !force {
                return Err(Failure::msg(
                    125,
                    "system reset removes every container, image and network of this berth: add --force",
                ));
            }
            engine.system_reset()?;
            let paths = engine.paths().clone();
            drop(engine);
            // Only directories that are berth's: the root holds its
            // database; never a top-level or shared directory.
            let shared = |d: &std::path::Path| {
                d.components().count() < 3
                    || [
                        "/run", "/tmp", "/var", "/var/lib", "/var/tmp", "/home", "/root",
                    ]
                    .iter()
                    .any(|s| d == std::path::Path::new(s))
            };
            if !paths.root.join("db").is_dir() || shared(&paths.root) || shared(&paths.runroot) {
                return Err(Failure::msg(
                    125,
                    format!(
                        "not removing {} and {}: they do not look like berth's own directories",
                        paths.root.display(),
                        paths.runroot.display()
                    ),
                ));
            }
            // Rootless: the namespace's pause process goes too (the
            // next command makes a new one).
            if engine::rootless::active() {
                engine::rootless::stop_pause(&paths.runroot);
            }
            for dir in [&paths.root, &paths.runroot] {
                match std::fs::remove_dir_all(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Failure::msg(
                            125,
                            format!("removing {}: {e}", dir.display()),
                        ))
                    }
                }
            }
            Ok(())
        }
        Command::Image(c) => image::dispatch(&engine, c),
        Command::Container(c) => container::dispatch(&engine, c),
    }
}

/// Write `path` through a temporary file next to it, renamed into place
/// once `write` succeeded: a failed export leaves no half archive under
/// the name.
pub(crate) fn write_file_atomically(
    path: &std::path::Path,
    write: impl FnOnce(std::fs::File) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let tmp = path.with_file_name(format!(
        ".{}.berth-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let f = std::fs::File::create(&tmp)
        .map_err(|e| Failure::msg(125, format!("cannot create {}: {e}", tmp.display())))?;
    if let Err(e) = write(f) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| Failure::msg(125, format!("cannot write {}: {e}", path.display())))
}
