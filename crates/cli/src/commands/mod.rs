//! One file per group of verbs; each builds a typed request and calls the engine.
use clap::Subcommand;

use crate::Failure;

mod container;
pub mod distribution;
mod image;
mod network;

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
    /// List images.
    Images(image::ImagesArgs),
    /// Create a tag that refers to an image.
    Tag(image::TagArgs),
    /// Remove images.
    Rmi(image::RmiArgs),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// Create an image from a root filesystem tarball.
    Import(image::ImportArgs),
    /// Load images from a docker-archive or OCI-layout tar.
    Load(image::LoadArgs),
    /// Save images to a docker-archive or OCI-layout tar.
    Save(image::SaveArgs),
    /// Manage images.
    /// Download an image from a registry.
    Pull(distribution::PullArgs),
    /// Upload an image to a registry.
    Push(distribution::PushArgs),
    /// Log in to a registry.
    Login(distribution::LoginArgs),
    /// Log out from a registry.
    Logout(distribution::LogoutArgs),
    /// The DNS responder of a network (started by berth itself).
    #[command(hide = true)]
    DnsServe {
        /// Network id.
        network: String,
    },
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage containers.
    #[command(subcommand)]
    Container(container::ContainerCommand),
}

/// Run a parsed command.
pub fn dispatch(paths: engine::Paths, cmd: Command) -> Result<(), Failure> {
    let engine = engine::Engine::open(paths)?;
    match cmd {
        Command::Run(a) => container::run(&engine, a, true),
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
        Command::Images(a) => image::images(&engine, a),
        Command::Tag(a) => image::tag(&engine, a),
        Command::Rmi(a) => image::rmi(&engine, a),
        Command::History(a) => image::history(&engine, a),
        Command::Import(a) => image::import(&engine, a),
        Command::Load(a) => image::load(&engine, a),
        Command::Save(a) => image::save(&engine, a),
        Command::Pull(a) => distribution::pull(&engine, a),
        Command::Push(a) => distribution::push(&engine, a),
        Command::Login(a) => distribution::login(&engine, a),
        Command::Logout(a) => distribution::logout(&engine, a),
        Command::Network(c) => network::dispatch(&engine, c),
        Command::DnsServe { network } => Ok(engine.serve_dns(&network)?),
        Command::Image(c) => image::dispatch(&engine, c),
        Command::Container(c) => container::dispatch(&engine, c),
    }
}
