//! `kube generate`: Kubernetes YAML from containers or a compose project.
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use engine::Engine;

use crate::Failure;

/// `kube` subcommands.
#[derive(Subcommand, Debug)]
pub enum KubeCommand {
    /// Kubernetes YAML (Pod or Deployment, PersistentVolumeClaims, Service)
    /// from containers, or from a compose project with --compose.
    Generate(GenerateArgs),
}

/// `kube generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Write the YAML to FILE instead of standard output.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    filename: Option<PathBuf>,
    /// Also generate a Service for the published ports (always with --compose).
    #[arg(short = 's', long)]
    service: bool,
    /// pod or deployment (default: pod for containers, deployment for --compose).
    #[arg(short = 't', long = "type", value_parser = ["pod", "deployment"])]
    kind: Option<String>,
    /// A compose file of the project to convert (several: merged in order).
    #[arg(long = "compose", value_name = "FILE")]
    compose: Vec<PathBuf>,
    /// With --compose: only this service (repeatable).
    #[arg(long = "compose-service", value_name = "SERVICE")]
    compose_service: Vec<String>,
    /// With --compose: the project name.
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Containers (one pod of them all), or nothing with --compose.
    containers: Vec<String>,
}

/// Run a `kube` subcommand.
pub fn dispatch(engine: &Engine, c: KubeCommand) -> Result<(), Failure> {
    match c {
        KubeCommand::Generate(a) => generate(engine, a),
    }
}

fn generate(engine: &Engine, a: GenerateArgs) -> Result<(), Failure> {
    let opts = kube::Options {
        kind: a.kind.as_deref().map(|k| match k {
            "deployment" => kube::Kind::Deployment,
            _ => kube::Kind::Pod,
        }),
        service: a.service,
    };
    let generated = if a.compose.is_empty() {
        if a.containers.is_empty() {
            return Err(Failure::usage(
                "kube generate needs a container (or --compose FILE)",
            ));
        }
        if !a.compose_service.is_empty() {
            return Err(Failure::usage("--compose-service needs --compose FILE"));
        }
        kube::generate_containers(engine, &a.containers, opts)
    } else {
        if !a.containers.is_empty() {
            return Err(Failure::usage(
                "kube generate takes containers or --compose FILE, not both",
            ));
        }
        let lo = compose::loader::LoadOptions {
            files: a.compose.clone(),
            project_name: a.project_name.clone(),
            project_directory: None,
            env_files: Vec::new(),
            profiles: Vec::new(),
            environment: std::env::vars().collect(),
            working_dir: std::env::current_dir()?,
        };
        let project = compose::loader::load(&lo).map_err(|e| Failure::msg(125, e.to_string()))?;
        for w in &project.warnings {
            eprintln!("WARN[0000] {w}");
        }
        kube::generate_compose(&project, &a.compose_service, opts)
    }
    .map_err(|e| match e {
        kube::Error::Engine(e) => Failure::from(e),
        kube::Error::Invalid(m) => Failure::msg(125, m),
    })?;
    for w in &generated.warnings {
        eprintln!("WARN[0000] kube generate: {w}");
    }
    let doc = generated.to_yaml();
    // As podman: an existing file is never replaced.
    if let Some(path) = a.filename.as_ref().filter(|p| p.symlink_metadata().is_ok()) {
        return Err(Failure::msg(
            125,
            format!(
                "cannot write to {}: the file exists; remove it or name another",
                path.display()
            ),
        ));
    }
    match &a.filename {
        Some(path) => super::write_file_atomically(path, |mut f| {
            f.write_all(doc.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Failure::msg(125, format!("cannot write {}: {e}", path.display())))
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(doc.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::msg(125, format!("writing the YAML: {e}")))
        }
    }
}
