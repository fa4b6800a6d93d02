//! `kube generate`: Kubernetes YAML from containers, pods or a compose
//! project; `kube play`/`kube down`: Kubernetes YAML in.
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use engine::Engine;

use crate::Failure;

/// `kube` subcommands.
#[derive(Subcommand, Debug)]
pub enum KubeCommand {
    /// Kubernetes YAML (Pod or Deployment, PersistentVolumeClaims, Service)
    /// from containers and pods, or from a compose project with --compose.
    Generate(GenerateArgs),
    /// Create pods, containers and volumes from Kubernetes YAML (Pod,
    /// Deployment, DaemonSet, Job, Service, ConfigMap, Secret,
    /// PersistentVolumeClaim) and start them.
    Play(PlayArgs),
    /// Remove what `kube play` made from the same file: its pods, their
    /// containers and files, and the volumes it created.
    Down(DownArgs),
}

/// `kube play`.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Take down pods of the same names (made by an earlier play) first.
    #[arg(long)]
    replace: bool,
    /// Start the pods (--start=false: create them only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    start: bool,
    /// The pods' network (default: the default bridge).
    #[arg(long)]
    network: Option<String>,
    /// The pods' user namespace, which their containers share (as pod
    /// create --userns: auto[:size=N], host; rootless keep-id, nomap).
    #[arg(long)]
    userns: Option<String>,
    /// A YAML file of ConfigMaps the pods refer to (repeatable).
    #[arg(long = "configmap", value_name = "FILE")]
    configmap: Vec<PathBuf>,
    /// Say nothing of pulls.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The YAML file (`-`: standard input).
    file: PathBuf,
}

/// `kube down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// The YAML file that was played (`-`: standard input).
    file: PathBuf,
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
    /// Containers (one pod of them all) and pods (a Pod each), or nothing
    /// with --compose.
    containers: Vec<String>,
}

/// Run a `kube` subcommand.
pub fn dispatch(engine: &Engine, c: KubeCommand) -> Result<(), Failure> {
    match c {
        KubeCommand::Generate(a) => generate(engine, a),
        KubeCommand::Play(a) => play(engine, a),
        KubeCommand::Down(a) => down(engine, a),
    }
}

fn read_yaml(path: &std::path::Path) -> Result<String, Failure> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut b)?;
        b
    } else {
        std::fs::read(path)
            .map_err(|e| Failure::msg(125, format!("cannot read {}: {e}", path.display())))?
    };
    String::from_utf8(bytes)
        .map_err(|_| Failure::msg(125, format!("{} is not UTF-8 text", path.display())))
}

fn kube_failure(e: kube::Error) -> Failure {
    match e {
        kube::Error::Engine(e) => Failure::msg(125, e.to_string()),
        kube::Error::Invalid(m) => Failure::msg(125, m),
    }
}

/// podman's report: volumes, then each pod with its containers.
fn play(engine: &Engine, a: PlayArgs) -> Result<(), Failure> {
    let text = read_yaml(&a.file)?;
    let _ = a.quiet;
    let mut configmaps = Vec::new();
    for f in &a.configmap {
        configmaps.push((f.display().to_string(), read_yaml(f)?));
    }
    let opts = kube::play::PlayOptions {
        replace: a.replace,
        start: a.start,
        network: a.network,
        configmaps,
        userns: a.userns,
    };
    let played = kube::play::play(engine, &text, &opts);
    let played = match played {
        Ok(p) => p,
        Err(e) => return Err(kube_failure(e)),
    };
    for w in &played.warnings {
        eprintln!("WARN[0000] kube play: {w}");
    }
    for n in &played.notes {
        eprintln!("INFO[0000] kube play: {n}");
    }
    let mut out = String::new();
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    if !played.volumes.is_empty() {
        // podman 4.3 says "Volumes:" for one too.
        out.push_str("Volumes:\n");
        for v in &played.volumes {
            out.push_str(v);
            out.push('\n');
        }
    }
    for p in &played.pods {
        out.push_str("Pod:\n");
        out.push_str(&p.id);
        out.push('\n');
        out.push_str(&plural(p.containers.len(), "Container:\n", "Containers:\n"));
        for c in &p.containers {
            out.push_str(c);
            out.push('\n');
        }
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// podman's report: the pods stopped, the pods removed (and volumes).
fn down(engine: &Engine, a: DownArgs) -> Result<(), Failure> {
    let text = read_yaml(&a.file)?;
    let downed = kube::play::down(engine, &text).map_err(kube_failure)?;
    for w in &downed.warnings {
        eprintln!("WARN[0000] kube down: {w}");
    }
    let mut out = String::from("Pods stopped:\n");
    for id in &downed.stopped {
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("Pods removed:\n");
    for id in &downed.removed {
        out.push_str(id);
        out.push('\n');
    }
    if !downed.volumes.is_empty() {
        out.push_str("Volumes removed:\n");
        for v in &downed.volumes {
            out.push_str(v);
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(())
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
                "kube generate needs a container or a pod (or --compose FILE)",
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
