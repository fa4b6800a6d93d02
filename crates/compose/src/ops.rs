//! `down`, `stop`, `start`, `restart`, `kill`, `rm`, `pause`, `unpause`:
//! the engine's calls on a project's containers, dependants before their
//! dependencies when stopping (as docker compose does).
use std::collections::BTreeSet;

use engine::container::start::AttachMode;
use engine::filters::Filters;
use engine::Engine;

use crate::model::Project;
use crate::project::{self, Member};
use crate::up::Report;
use crate::{Error, Result};

/// Stop (within `timeout` seconds) and remove one container, reporting
/// each step.
pub fn remove_container(
    engine: &Engine,
    name: &str,
    timeout: Option<i64>,
    volumes: bool,
    report: Report<'_>,
) -> Result<()> {
    let c = engine.container(name)?;
    if c.is_running() || c.state.status == engine::config::Status::Restarting {
        report("Container", name, "Stopping");
        engine.stop(name, timeout)?;
        report("Container", name, "Stopped");
    }
    report("Container", name, "Removing");
    engine.remove(name, true, volumes)?;
    report("Container", name, "Removed");
    Ok(())
}

/// Stop the running ones of `group` at once (each within its grace).
fn stop_group(
    engine: &Engine,
    project: Option<&Project>,
    group: &[&Member],
    timeout: Option<i64>,
    report: Report<'_>,
) -> Result<()> {
    let running: Vec<&&Member> = group
        .iter()
        .filter(|m| {
            engine.container(m.container.id().as_str()).is_ok_and(|c| {
                c.is_running() || c.state.status == engine::config::Status::Restarting
            })
        })
        .collect();
    if running.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = running
        .iter()
        .map(|m| m.container.name().to_string())
        .collect();
    for n in &names {
        report("Container", n, "Stopping");
    }
    let grace_s = grace(project, running[0], timeout);
    for (name, outcome) in engine.stop_many(&names, grace_s) {
        outcome?;
        report("Container", &name, "Stopped");
    }
    Ok(())
}

/// Stop and remove without reporting (a recreate).
pub fn stop_and_remove(engine: &Engine, name: &str, timeout: Option<i64>) -> Result<()> {
    let c = engine.container(name)?;
    if c.is_running() {
        engine.stop(name, timeout)?;
    }
    engine.remove(name, true, false)?;
    Ok(())
}

/// The project's members of `services` (all when empty), dependants
/// first: the order to stop them in.
pub fn stop_order<'m>(
    project: Option<&Project>,
    members: &'m [Member],
    services: &[String],
) -> Vec<&'m Member> {
    let rank: Vec<String> = match project {
        Some(p) => {
            let mut o = project::start_order(p);
            o.reverse();
            o
        }
        None => Vec::new(),
    };
    let mut out: Vec<&Member> = members
        .iter()
        .filter(|m| services.is_empty() || services.contains(&m.service))
        .collect();
    out.sort_by_key(|m| {
        (
            rank.iter()
                .position(|s| *s == m.service)
                .unwrap_or(usize::MAX),
            m.service.clone(),
            m.number,
        )
    });
    out
}

fn grace(project: Option<&Project>, m: &Member, timeout: Option<i64>) -> Option<i64> {
    timeout.or_else(|| {
        project
            .and_then(|p| p.services.get(&m.service))
            .and_then(|s| s.stop_grace_period)
            .map(|d| d.0.as_secs() as i64)
    })
}

/// Options of `down`.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// `-v`: the project's named volumes and the containers' anonymous ones.
    pub volumes: bool,
    /// Containers of services no longer in the file too.
    pub remove_orphans: bool,
    /// `-t`: seconds to wait for each stop.
    pub timeout: Option<i64>,
    /// `--rmi local|all`.
    pub rmi: Option<String>,
    /// `--dry-run`: say what would be done, change nothing.
    pub dry_run: bool,
}

/// `down`: stop and remove the project's containers, then the networks
/// (and with `-v` the volumes) it made. `project` is `None` when only the
/// name is known (`down -p NAME` without a file): everything labelled
/// with the name goes.
pub fn down(
    engine: &Engine,
    name: &str,
    project: Option<&Project>,
    opts: &DownOptions,
    report: Report<'_>,
) -> Result<()> {
    let members = project::members(engine, name)?;
    let known =
        |s: &str| project.is_none_or(|p| p.services.contains_key(s) || p.disabled.contains_key(s));
    let orphans: Vec<&Member> = members
        .iter()
        .filter(|m| !m.oneoff && !known(&m.service))
        .collect();
    if !orphans.is_empty() && !opts.remove_orphans {
        let names: Vec<&str> = orphans.iter().map(|m| m.container.name()).collect();
        report(
            "Warning",
            "",
            &format!(
                "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(" ")
            ),
        );
    }
    let mut images: BTreeSet<String> = BTreeSet::new();
    let order: Vec<&Member> = stop_order(project, &members, &[])
        .into_iter()
        .filter(|m| known(&m.service) || opts.remove_orphans)
        .collect();
    // Service by service, dependants first; a service's containers (its
    // replicas) are stopped at once, as docker compose does.
    for group in order.chunk_by(|a, b| a.service == b.service) {
        for m in group {
            if let Some(img) = m.label(project::IMAGE) {
                images.insert(img.to_string());
            }
        }
        if opts.dry_run {
            for m in group {
                for word in ["Stopped", "Removed"] {
                    report("Container", m.container.name(), word);
                }
            }
            continue;
        }
        stop_group(engine, project, group, opts.timeout, report)?;
        for m in group {
            let name = m.container.name();
            report("Container", name, "Removing");
            engine.remove(name, true, opts.volumes)?;
            report("Container", name, "Removed");
        }
    }
    // Secrets and configs written for the project's containers.
    let files = crate::up::files_dir(engine, name);
    if files.exists() && !opts.dry_run {
        std::fs::remove_dir_all(&files)
            .map_err(|e| Error::Failed(format!("removing {}: {e}", files.display())))?;
    }
    // Networks: the ones the file declares (not external), or without a
    // file every network labelled with the project.
    let label = Filters::parse(&[format!("label={}={name}", project::PROJECT)], &["label"])?;
    let mut nets: Vec<String> = engine
        .list_networks(&label)?
        .into_iter()
        .map(|n| n.name)
        .collect();
    if let Some(p) = project {
        for n in p.networks.values().filter(|n| !n.external) {
            if !nets.contains(&n.name) && engine.network(&n.name).is_ok() {
                nets.push(n.name.clone());
            }
        }
    }
    nets.sort();
    for n in nets {
        report("Network", &n, "Removing");
        if opts.dry_run {
            report("Network", &n, "Removed");
            continue;
        }
        match engine.network_remove(&n) {
            Ok(_) => report("Network", &n, "Removed"),
            Err(e) => report("Network", &n, &format!("Error: {e}")),
        }
    }
    if opts.volumes {
        let mut vols: Vec<String> = engine
            .list_volumes(&label)?
            .into_iter()
            .map(|v| v.name)
            .collect();
        if let Some(p) = project {
            for v in p.volumes.values().filter(|v| !v.external) {
                if !vols.contains(&v.name) && engine.volume(&v.name).is_ok() {
                    vols.push(v.name.clone());
                }
            }
        }
        vols.sort();
        for v in vols {
            report("Volume", &v, "Removing");
            if opts.dry_run {
                report("Volume", &v, "Removed");
                continue;
            }
            match engine.volume_remove(&v) {
                Ok(_) => report("Volume", &v, "Removed"),
                Err(e) => report("Volume", &v, &format!("Error: {e}")),
            }
        }
    }
    if let Some(which) = &opts.rmi {
        let mut names: BTreeSet<String> = BTreeSet::new();
        if let Some(p) = project {
            for s in p.services.values() {
                // `local`: only images the project built (no `image:`).
                if which == "all" || s.image.is_none() {
                    names.insert(project::image_name(p, s));
                }
            }
        }
        for n in names {
            if engine.image_id(&n).is_none() {
                continue;
            }
            report("Image", &n, "Removing");
            if opts.dry_run {
                report("Image", &n, "Removed");
                continue;
            }
            match engine.remove_image(&n, false) {
                Ok(_) => report("Image", &n, "Removed"),
                Err(e) => report("Image", &n, &format!("Error: {e}")),
            }
        }
    }
    Ok(())
}

/// What `stop`, `start`, `restart`, `kill`, `pause`, `unpause` do to each container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop within the timeout.
    Stop,
    /// Start a stopped container.
    Start,
    /// Stop then start.
    Restart,
    /// Send a signal.
    Kill(model::Signal),
    /// Freeze.
    Pause,
    /// Thaw.
    Unpause,
}

/// Apply `action` to the project's containers of `services` (all when
/// empty): stops dependants first, starts dependencies first.
pub fn act(
    engine: &Engine,
    project: &Project,
    services: &[String],
    action: Action,
    timeout: Option<i64>,
    report: Report<'_>,
) -> Result<()> {
    for s in services {
        if !project.services.contains_key(s) {
            return Err(Error::NoSuchService(s.clone()));
        }
    }
    let members = project::members(engine, &project.name)?;
    let members: Vec<Member> = members.into_iter().filter(|m| !m.oneoff).collect();
    let mut list = stop_order(Some(project), &members, services);
    if matches!(action, Action::Start | Action::Unpause) {
        list.reverse();
    }
    if action == Action::Stop {
        for group in list.chunk_by(|a, b| a.service == b.service) {
            stop_group(engine, Some(project), group, timeout, report)?;
        }
        return Ok(());
    }
    for m in list {
        let name = m.container.name();
        let c = engine.container(name)?;
        match action {
            // Done above, a service's containers at once.
            Action::Stop => {}
            Action::Start => {
                if !c.is_running() {
                    report("Container", name, "Starting");
                    engine.start(name, AttachMode::Detached)?;
                    report("Container", name, "Started");
                }
            }
            Action::Restart => {
                report("Container", name, "Restarting");
                if c.is_running() {
                    engine.stop(name, grace(Some(project), m, timeout))?;
                }
                engine.start(name, AttachMode::Detached)?;
                report("Container", name, "Started");
            }
            Action::Kill(sig) => {
                if c.is_running() {
                    report("Container", name, "Killing");
                    engine.kill(name, sig)?;
                    report("Container", name, "Killed");
                }
            }
            Action::Pause => {
                if c.is_running() {
                    report("Container", name, "Pausing");
                    engine.pause(name)?;
                    report("Container", name, "Paused");
                }
            }
            Action::Unpause => {
                if c.state.status == engine::config::Status::Paused {
                    report("Container", name, "Unpausing");
                    engine.unpause(name)?;
                    report("Container", name, "Unpaused");
                }
            }
        }
    }
    Ok(())
}

/// `rm`: remove the project's stopped containers of `services` (all when
/// empty); with `stop`, stop running ones first. Returns what it removed.
pub fn rm(
    engine: &Engine,
    project: &Project,
    services: &[String],
    stop: bool,
    volumes: bool,
    report: Report<'_>,
) -> Result<Vec<String>> {
    let members = project::members(engine, &project.name)?;
    let mut removed = Vec::new();
    for m in stop_order(Some(project), &members, services) {
        let name = m.container.name();
        if m.container.is_running() {
            if !stop {
                continue;
            }
            report("Container", name, "Stopping");
            engine.stop(name, grace(Some(project), m, None))?;
            report("Container", name, "Stopped");
        }
        report("Container", name, "Removing");
        engine.remove(name, true, volumes)?;
        report("Container", name, "Removed");
        removed.push(name.to_string());
    }
    Ok(removed)
}
