//! `compose up` (and `create`): make the project's networks and volumes,
//! get its images (build or pull), reconcile each service's containers
//! with the file (an unchanged container is kept, a changed one recreated,
//! extra ones removed), then start them in dependency order, each service
//! once every dependency's condition holds.
//!
//! The engine forks a monitor per container start, which must happen in a
//! single-threaded process: the services are started by one loop that
//! polls the dependencies' states rather than by threads. A start takes a
//! few milliseconds, so services that do not wait on each other still
//! start at once in practice.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use engine::build::BuildRequest;
use engine::config::Status;
use engine::health::HealthStatus;
use engine::networks::NetworkCreate;
use engine::Engine;

use crate::convert::{self, Context};
use crate::model::{Project, Service};
use crate::project::{self, Member};
use crate::{Error, Result};

/// What the user sees happen: `(kind, name, status)`, e.g.
/// `("Container", "demo-web-1", "Started")` — docker compose's progress
/// lines.
pub type Report<'a> = &'a dyn Fn(&str, &str, &str);

/// Options of `up` and `create`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services named on the command line (empty: all).
    pub services: Vec<String>,
    /// Leave out the named services' dependencies.
    pub no_deps: bool,
    /// Recreate containers even when their config is unchanged.
    pub force_recreate: bool,
    /// Keep existing containers even when their config changed.
    pub no_recreate: bool,
    /// Build images before starting (`--build`).
    pub build: bool,
    /// Never build (`--no-build`): a missing image is an error.
    pub no_build: bool,
    /// `--pull`: `always`, `missing` (default), `never`.
    pub pull: Option<String>,
    /// Remove containers of services not in the file.
    pub remove_orphans: bool,
    /// `--scale svc=n`.
    pub scale: BTreeMap<String, u32>,
    /// Create only (`compose create`, `up --no-start`).
    pub no_start: bool,
    /// Wait until every container runs (and is healthy where it has a check).
    pub wait: bool,
    /// Give up `--wait` after this long.
    pub wait_timeout: Option<Duration>,
    /// `--dry-run`: say what would be done, change nothing.
    pub dry_run: bool,
}

/// How often dependency states are polled (a read of the store: cheap;
/// the time between a dependency turning healthy and its dependants
/// starting is at most this).
const POLL: Duration = Duration::from_millis(10);

/// The outcome of `up`: the containers of the selected services, in start
/// order.
#[derive(Debug, Default)]
pub struct UpOutcome {
    /// Container names, in start order.
    pub containers: Vec<String>,
    /// The ones this `up` started (the others were running already).
    pub started: Vec<String>,
}

/// Bring the project up.
pub fn up(
    engine: &Engine,
    project: &Project,
    opts: &UpOptions,
    build_out: &mut dyn Write,
    report: Report<'_>,
) -> Result<UpOutcome> {
    let selected = project::selection(project, &opts.services, opts.no_deps)?;
    let order: Vec<String> = project::start_order(project)
        .into_iter()
        .filter(|s| selected.contains(s))
        .collect();
    let members = project::members(engine, &project.name)?;
    // Images first (as docker compose): a pull or build that fails leaves
    // no network or volume behind.
    for name in &order {
        ensure_image(
            engine,
            project,
            &project.services[name],
            opts,
            build_out,
            report,
        )?;
    }
    orphans(engine, project, &members, opts, report)?;
    ensure_networks(engine, project, &order, opts.dry_run, report)?;
    ensure_volumes(engine, project, &order, opts.dry_run, report)?;
    // Reconcile, service by service in start order (so a service's
    // `network_mode: service:X` finds X's container).
    let mut ctx = Context {
        files: if opts.dry_run {
            BTreeMap::new()
        } else {
            prepare_files(engine, project, &order)?
        },
        ..Context::default()
    };
    let mut planned: BTreeMap<String, Vec<Planned>> = BTreeMap::new();
    for name in &order {
        let service = &project.services[name];
        let mine: Vec<&Member> = members
            .iter()
            .filter(|m| &m.service == name && !m.oneoff)
            .collect();
        let mut plan = reconcile(engine, project, service, &mine, opts, &ctx, report)?;
        if let Some(first) = plan.first() {
            ctx.joined.insert(name.clone(), first.name.clone());
        }
        // `depends_on: {X: {restart: true}}`: a recreated X restarts this
        // service's running containers (stopped here, started again once X
        // is ready).
        let restart = service.depends_on.iter().any(|(dep, d)| {
            d.restart
                && planned
                    .get(dep)
                    .is_some_and(|p| p.iter().any(|c| c.recreated))
        });
        if restart {
            for c in plan.iter_mut().filter(|c| c.running) {
                report("Container", &c.name, "Restarting");
                c.running = false;
                if opts.dry_run {
                    continue;
                }
                engine.stop(
                    &c.name,
                    service.stop_grace_period.map(|d| d.0.as_secs() as i64),
                )?;
                c.running = false;
            }
        }
        planned.insert(name.clone(), plan);
    }
    let mut outcome = UpOutcome::default();
    for name in &order {
        outcome
            .containers
            .extend(planned[name].iter().map(|p| p.name.clone()));
    }
    if opts.no_start {
        return Ok(outcome);
    }
    if opts.dry_run {
        for name in &order {
            for p in &planned[name] {
                let word = if p.running { "Running" } else { "Started" };
                report("Container", &p.name, word);
            }
        }
        return Ok(outcome);
    }
    outcome.started = start_in_order(engine, project, &order, &planned, report)?;
    if opts.wait {
        wait_ready(engine, &outcome.containers, opts.wait_timeout, report)?;
    }
    Ok(outcome)
}

/// A container `up` keeps or made.
#[derive(Debug, Clone)]
struct Planned {
    name: String,
    /// Was running before `up` and left alone.
    running: bool,
    /// Made anew by this `up` in place of a changed container.
    recreated: bool,
}

fn orphans(
    engine: &Engine,
    project: &Project,
    members: &[Member],
    opts: &UpOptions,
    report: Report<'_>,
) -> Result<()> {
    let known = |s: &str| project.services.contains_key(s) || project.disabled.contains_key(s);
    let orphans: Vec<&Member> = members
        .iter()
        .filter(|m| !m.oneoff && !known(&m.service))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !opts.remove_orphans {
        let names: Vec<&str> = orphans.iter().map(|m| m.container.name()).collect();
        report(
            "Warning",
            "",
            &format!(
                "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(" ")
            ),
        );
        return Ok(());
    }
    for m in orphans {
        if opts.dry_run {
            report("Container", m.container.name(), "Removed");
            continue;
        }
        crate::ops::remove_container(engine, m.container.name(), None, false, report)?;
    }
    Ok(())
}

/// The networks the services in `order` use, made when missing.
fn ensure_networks(
    engine: &Engine,
    project: &Project,
    order: &[String],
    dry_run: bool,
    report: Report<'_>,
) -> Result<()> {
    let mut used = BTreeSet::new();
    for s in order {
        let svc = &project.services[s];
        if svc.network_mode.is_none() {
            used.extend(svc.networks.keys().cloned());
        }
    }
    for key in used {
        let net = project.networks.get(&key).ok_or_else(|| {
            Error::Invalid(format!(
                "service network {key:?} is not declared in networks:"
            ))
        })?;
        if engine.network(&net.name).is_ok() || convert::special_network(net).is_some() {
            continue;
        }
        if net.external {
            return Err(Error::Failed(format!(
                "network {} declared as external, but could not be found",
                net.name
            )));
        }
        if net.driver.as_deref().is_some_and(|d| d != "bridge") {
            return Err(Error::Invalid(format!(
                "network {key:?}: driver {:?} is not supported by berth (bridge)",
                net.driver.as_deref().unwrap_or_default()
            )));
        }
        let pool = net.ipam.as_ref().and_then(|i| i.config.first());
        report("Network", &net.name, "Creating");
        if dry_run {
            report("Network", &net.name, "Created");
            continue;
        }
        engine.network_create(&NetworkCreate {
            name: net.name.clone(),
            pools: pool
                .and_then(|p| {
                    Some(engine::networks::IpamPool {
                        subnet: p.subnet.clone()?,
                        gateway: p.gateway.clone(),
                        ip_range: p.ip_range.clone(),
                        ..Default::default()
                    })
                })
                .into_iter()
                .collect(),
            internal: net.internal,
            labels: project::object_labels(project, project::NETWORK, &key, &net.labels),
            options: net.driver_opts.clone(),
            ..Default::default()
        })?;
        report("Network", &net.name, "Created");
    }
    Ok(())
}

/// The named volumes the services in `order` mount, made when missing.
fn ensure_volumes(
    engine: &Engine,
    project: &Project,
    order: &[String],
    dry_run: bool,
    report: Report<'_>,
) -> Result<()> {
    let mut used = BTreeSet::new();
    for s in order {
        for v in &project.services[s].volumes {
            if v.kind == "volume" {
                if let Some(src) = &v.source {
                    used.insert(src.clone());
                }
            }
        }
    }
    for key in used {
        let vol = project.volumes.get(&key).ok_or_else(|| {
            Error::Invalid(format!(
                "service volume {key:?} is not declared in volumes:"
            ))
        })?;
        if engine.volume(&vol.name).is_ok() {
            continue;
        }
        if vol.external {
            return Err(Error::Failed(format!(
                "external volume \"{}\" not found",
                vol.name
            )));
        }
        report("Volume", &format!("\"{}\"", vol.name), "Creating");
        if dry_run {
            report("Volume", &format!("\"{}\"", vol.name), "Created");
            continue;
        }
        engine.volume_create(
            Some(&vol.name),
            vol.driver.as_deref(),
            project::object_labels(project, project::VOLUME, &key, &vol.labels),
            vol.driver_opts.clone(),
        )?;
        report("Volume", &format!("\"{}\"", vol.name), "Created");
    }
    Ok(())
}

/// Where the project's secrets and configs given by `environment:` or
/// `content:` are written to be bind-mounted (removed by `down`).
pub fn files_dir(engine: &Engine, project: &str) -> PathBuf {
    engine.paths().root.join("compose").join(project)
}

/// The host file each secret and config the services in `order` use is
/// mounted from: a `file:` as it is, an `environment:` or `content:` one
/// written under [`files_dir`].
fn prepare_files(
    engine: &Engine,
    project: &Project,
    order: &[String],
) -> Result<BTreeMap<(&'static str, String), PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    for name in order {
        let s = &project.services[name];
        for (list, kind, objects) in [
            (&s.secrets, "secret", &project.secrets),
            (&s.configs, "config", &project.configs),
        ] {
            for r in list {
                let key = (kind, r.source.clone());
                if out.contains_key(&key) {
                    continue;
                }
                let obj = objects.get(&r.source).ok_or_else(|| {
                    Error::Invalid(format!(
                        "service {name:?} refers to undefined {kind} {}: invalid compose project",
                        r.source
                    ))
                })?;
                let content = if let Some(f) = &obj.file {
                    let p = PathBuf::from(f);
                    if !p.exists() {
                        return Err(Error::Failed(format!(
                            "{kind} {:?}: file {f} not found",
                            r.source
                        )));
                    }
                    out.insert(key, p);
                    continue;
                } else if let Some(var) = &obj.environment {
                    project.environment.get(var).cloned().ok_or_else(|| {
                        Error::Failed(format!(
                            "{kind} {:?}: environment variable {var} is not set",
                            r.source
                        ))
                    })?
                } else if let Some(c) = &obj.content {
                    c.clone()
                } else {
                    return Err(Error::Invalid(format!(
                        "{kind} {:?}: external {kind}s are a Swarm feature; use file:, environment: or content:",
                        r.source
                    )));
                };
                let dir = files_dir(engine, &project.name).join(format!("{kind}s"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::Failed(format!("creating {}: {e}", dir.display())))?;
                let path = dir.join(&r.source);
                std::fs::write(&path, content)
                    .and_then(|_| {
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
                    })
                    .map_err(|e| Error::Failed(format!("writing {}: {e}", path.display())))?;
                out.insert(key, path);
            }
        }
    }
    Ok(out)
}

/// Build or pull the service's image as `--build`, `--pull` and
/// `pull_policy` say.
fn ensure_image(
    engine: &Engine,
    project: &Project,
    service: &Service,
    opts: &UpOptions,
    build_out: &mut dyn Write,
    report: Report<'_>,
) -> Result<()> {
    let image = project::image_name(project, service);
    let present = engine.image_id(&image).is_some();
    let policy = opts
        .pull
        .clone()
        .or_else(|| service.pull_policy.clone())
        .unwrap_or_else(|| "missing".into());
    if service.build.is_some() && !opts.no_build {
        let wanted = opts.build || !present || policy == "build";
        if wanted && opts.dry_run {
            report("Service", &service.name, "Built");
        } else if wanted {
            build_service(engine, project, service, build_out, report)?;
        }
        return Ok(());
    }
    let pull = match policy.as_str() {
        "always" => true,
        "missing" | "if_not_present" | "build" => !present,
        "never" => {
            if !present {
                return Err(Error::Failed(format!(
                    "service {:?}: image {image} is not present and its pull policy is never",
                    service.name
                )));
            }
            false
        }
        other => {
            return Err(Error::Invalid(format!(
                "service {:?}: invalid pull policy {other:?}: use always, missing, never or build",
                service.name
            )))
        }
    };
    if pull && opts.dry_run {
        report("Image", &image, "Pulled");
    } else if pull {
        report("Image", &image, "Pulling");
        engine.ensure_image(&image, true).map_err(|e| {
            Error::Failed(format!("service {:?}: pulling {image}: {e}", service.name))
        })?;
        report("Image", &image, "Pulled");
    }
    Ok(())
}

/// The id of the service's image, which `ensure_image` made present; a
/// dry run built or pulled nothing, so it may have none.
fn present_image_id(
    engine: &Engine,
    service: &Service,
    image: &str,
    dry_run: bool,
) -> Result<String> {
    match engine.image_id(image) {
        Some(id) => Ok(id),
        None if dry_run => Ok(String::new()),
        None => Err(Error::Failed(format!(
            "service {:?}: image {image} is not present",
            service.name
        ))),
    }
}

/// `compose build` of one service: its image, tagged `image:` or
/// `<project>-<service>`.
pub fn build_service(
    engine: &Engine,
    project: &Project,
    service: &Service,
    out: &mut dyn Write,
    report: Report<'_>,
) -> Result<()> {
    let Some(b) = &service.build else {
        return Ok(());
    };
    // `dockerfile_inline`: written to a file of its own for the build (not
    // into the context), removed after.
    let inline = match &b.dockerfile_inline {
        Some(text) => {
            let mut f = tempfile::Builder::new()
                .prefix("berth-compose-dockerfile-")
                .tempfile()
                .map_err(|e| Error::Failed(format!("service {:?}: {e}", service.name)))?;
            f.write_all(text.as_bytes())
                .map_err(|e| Error::Failed(format!("service {:?}: {e}", service.name)))?;
            Some(f)
        }
        None => None,
    };
    let image = project::image_name(project, service);
    let tag = image.parse().map_err(|e| {
        Error::Invalid(format!(
            "service {:?}: image name {image:?}: {e}",
            service.name
        ))
    })?;
    let mut tags = vec![tag];
    for t in &b.tags {
        tags.push(t.parse().map_err(|e| {
            Error::Invalid(format!("service {:?}: build.tags {t:?}: {e}", service.name))
        })?);
    }
    // `build.secrets`: the top-level secrets' values, by their key (or
    // the reference's target), for `RUN --mount=type=secret,id=...`.
    let mut secrets = std::collections::BTreeMap::new();
    for r in &b.secrets {
        let obj = project.secrets.get(&r.source).ok_or_else(|| {
            Error::Invalid(format!(
                "service {:?} refers to undefined build secret {}: invalid compose project",
                service.name, r.source
            ))
        })?;
        let value = if let Some(f) = &obj.file {
            std::fs::read(f).map_err(|e| {
                Error::Failed(format!("build secret {:?}: reading {f}: {e}", r.source))
            })?
        } else if let Some(var) = &obj.environment {
            project
                .environment
                .get(var)
                .ok_or_else(|| {
                    Error::Failed(format!(
                        "build secret {:?}: environment variable {var} is not set",
                        r.source
                    ))
                })?
                .clone()
                .into_bytes()
        } else if let Some(c) = &obj.content {
            c.clone().into_bytes()
        } else {
            return Err(Error::Invalid(format!(
                "build secret {:?}: use file:, environment: or content:",
                r.source
            )));
        };
        let id = r
            .target
            .clone()
            .filter(|t| !t.contains('/'))
            .unwrap_or_else(|| r.source.clone());
        secrets.insert(id, value);
    }
    let context = PathBuf::from(&b.context);
    let allow = b
        .entitlements
        .iter()
        .map(|e| {
            e.parse().map_err(|why: String| {
                Error::Failed(format!(
                    "service {:?}: build.entitlements: {why}",
                    service.name
                ))
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let req = BuildRequest {
        allow,
        secrets: engine::build::Secrets(secrets),
        dockerfile: match &inline {
            Some(f) => Some(f.path().to_path_buf()),
            None => b.dockerfile.as_ref().map(|d| context.join(d)),
        },
        context,
        tags,
        build_args: b.args.clone(),
        target: b.target.clone(),
        no_cache: b.no_cache,
        labels: b.labels.clone(),
        network: b.network.clone(),
        pull: b.pull,
        cache_from_images: b.cache_from.clone(),
        ..Default::default()
    };
    report("Service", &service.name, "Building");
    engine
        .build(&req, out)
        .map_err(|e| Error::Failed(format!("failed to solve: service {:?}: {e}", service.name)))?;
    report("Service", &service.name, "Built");
    Ok(())
}

/// Make the service's containers agree with the file: keep, recreate,
/// create or remove. Returns the containers the service has after.
fn reconcile(
    engine: &Engine,
    project: &Project,
    service: &Service,
    existing: &[&Member],
    opts: &UpOptions,
    ctx: &Context,
    report: Report<'_>,
) -> Result<Vec<Planned>> {
    let want = opts
        .scale
        .get(&service.name)
        .copied()
        .or(service.scale)
        .unwrap_or(1);
    if want > 1 && service.container_name.is_some() {
        return Err(Error::Invalid(format!(
            "service {:?} has container_name set: it cannot be scaled to {want}",
            service.name
        )));
    }
    let hash = project::config_hash(service);
    let image = project::image_name(project, service);
    let image_id = present_image_id(engine, service, &image, opts.dry_run)?;
    // Scaled down: the highest numbers go.
    for m in existing.iter().filter(|m| m.number > want) {
        if opts.dry_run {
            report("Container", m.container.name(), "Removed");
            continue;
        }
        crate::ops::remove_container(
            engine,
            m.container.name(),
            service.stop_grace_period.map(|d| d.0.as_secs() as i64),
            false,
            report,
        )?;
    }
    let mut out = Vec::new();
    for n in 1..=want {
        let current = existing.iter().find(|m| m.number == n);
        if let Some(m) = current {
            let same = m.label(project::CONFIG_HASH) == Some(hash.as_str())
                && m.label(project::IMAGE) == Some(image_id.as_str());
            if opts.no_recreate || (same && !opts.force_recreate) {
                out.push(Planned {
                    name: m.container.name().to_string(),
                    running: m.container.is_running(),
                    recreated: false,
                });
                continue;
            }
            let name = m.container.name().to_string();
            report("Container", &name, "Recreate");
            if !opts.dry_run {
                crate::ops::stop_and_remove(
                    engine,
                    &name,
                    service.stop_grace_period.map(|d| d.0.as_secs() as i64),
                )?;
                create(engine, project, service, n, &hash, &image, &image_id, ctx)?;
            }
            report("Container", &name, "Recreated");
            out.push(Planned {
                name,
                running: false,
                recreated: true,
            });
            continue;
        }
        let name = project::container_name(project, service, n);
        report("Container", &name, "Creating");
        if !opts.dry_run {
            create(engine, project, service, n, &hash, &image, &image_id, ctx)?;
        }
        report("Container", &name, "Created");
        out.push(Planned {
            name,
            running: false,
            recreated: false,
        });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn create(
    engine: &Engine,
    project: &Project,
    service: &Service,
    number: u32,
    hash: &str,
    image: &str,
    image_id: &str,
    ctx: &Context,
) -> Result<()> {
    let name = project::container_name(project, service, number);
    let labels = project::container_labels(project, service, number, false, hash, image_id);
    let req = convert::create_request(project, service, &name, image, labels, ctx)?;
    convert::create_bind_sources(service)?;
    engine.create(&req).map_err(|e| {
        Error::Failed(format!(
            "service {:?}: creating container {name}: {e}",
            service.name
        ))
    })?;
    // The other networks, each with the service's aliases there.
    if service.network_mode.is_none() {
        for key in convert::ordered_networks(service).iter().skip(1) {
            let net = &project.networks[key];
            let sn = &service.networks[key];
            engine
                .network_connect(
                    &net.name,
                    &name,
                    &engine::networks::Endpoint {
                        aliases: convert::aliases(service, sn),
                        ip: sn.ipv4_address.clone(),
                        ..Default::default()
                    },
                )
                .map_err(|e| {
                    Error::Failed(format!(
                        "service {:?}: connecting {name} to {}: {e}",
                        service.name, net.name
                    ))
                })?;
        }
    }
    Ok(())
}

/// Where a dependency stands for a condition.
enum Condition {
    Met,
    Waiting,
    Failed(String),
}

fn condition(engine: &Engine, containers: &[Planned], cond: &str) -> Result<Condition> {
    for p in containers {
        let c = engine.container(&p.name)?;
        match cond {
            "service_healthy" => match &c.state.health {
                _ if !c.is_running() && c.state.status != Status::Restarting => {
                    return Ok(Condition::Failed(format!(
                        "container {} exited ({})",
                        p.name, c.state.exit_code
                    )))
                }
                None => {
                    return Ok(Condition::Failed(format!(
                        "container {} has no healthcheck configured",
                        p.name
                    )))
                }
                Some(h) => match h.status {
                    HealthStatus::Healthy => {}
                    HealthStatus::Starting => return Ok(Condition::Waiting),
                    HealthStatus::Unhealthy => {
                        return Ok(Condition::Failed(format!(
                            "container {} is unhealthy",
                            p.name
                        )))
                    }
                },
            },
            "service_completed_successfully" => {
                if c.is_running() || matches!(c.state.status, Status::Restarting | Status::Created)
                {
                    return Ok(Condition::Waiting);
                }
                if c.state.exit_code != 0 {
                    return Ok(Condition::Failed(format!(
                        "service {:?} didn't complete successfully: exit {}",
                        containers_service(&c),
                        c.state.exit_code
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(Condition::Met)
}

fn containers_service(c: &engine::container::Container) -> String {
    c.config
        .labels
        .get(project::SERVICE)
        .cloned()
        .unwrap_or_else(|| c.name().to_string())
}

/// Start each service's containers once its dependencies' conditions hold.
fn start_in_order(
    engine: &Engine,
    project: &Project,
    order: &[String],
    planned: &BTreeMap<String, Vec<Planned>>,
    report: Report<'_>,
) -> Result<Vec<String>> {
    let mut started = Vec::new();
    let mut pending: Vec<&String> = order.iter().collect();
    let mut waiting_said: BTreeSet<(String, String)> = BTreeSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let mut batch: Vec<(String, String)> = Vec::new();
    while !pending.is_empty() {
        let mut progressed = false;
        let mut still = Vec::new();
        for name in pending {
            let service = &project.services[name];
            let mut ready = true;
            let mut failed = None;
            for (dep, d) in &service.depends_on {
                // Dependencies outside this `up` (--no-deps, or not named)
                // are not waited for.
                let Some(dep_containers) = planned.get(dep) else {
                    continue;
                };
                if skipped.contains(dep) {
                    if d.required {
                        failed = Some(format!("dependency {dep:?} was not started"));
                    }
                    continue;
                }
                if still.contains(&dep) || batch.iter().any(|(svc, _)| svc == dep) {
                    ready = false;
                    continue;
                }
                if d.condition == "service_started" {
                    continue;
                }
                for p in dep_containers {
                    if waiting_said.insert((dep.clone(), p.name.clone())) {
                        report("Container", &p.name, "Waiting");
                    }
                }
                match condition(engine, dep_containers, &d.condition)? {
                    Condition::Met => {
                        for p in dep_containers {
                            if waiting_said.insert((format!("{dep}\0done"), p.name.clone())) {
                                let word = if d.condition == "service_healthy" {
                                    "Healthy"
                                } else {
                                    "Exited"
                                };
                                report("Container", &p.name, word);
                            }
                        }
                    }
                    Condition::Waiting => ready = false,
                    Condition::Failed(why) => {
                        if d.required {
                            failed = Some(why);
                        } else {
                            report(
                                "Warning",
                                "",
                                &format!("optional dependency {dep:?} failed: {why}"),
                            );
                        }
                    }
                }
            }
            if let Some(why) = failed {
                failures.push(format!("dependency failed to start: {why}"));
                skipped.insert(name.clone());
                progressed = true;
                continue;
            }
            if !ready {
                still.push(name);
                continue;
            }
            for p in &planned[name] {
                if p.running {
                    report("Container", &p.name, "Running");
                    continue;
                }
                let c = engine.container(&p.name)?;
                if c.is_running() {
                    report("Container", &p.name, "Running");
                    continue;
                }
                report("Container", &p.name, "Starting");
                batch.push((name.clone(), p.name.clone()));
            }
            progressed = true;
        }
        // The services that became ready together start at once.
        let names: Vec<String> = batch.iter().map(|(_, c)| c.clone()).collect();
        let mut failed = None;
        for ((service, _), (name, outcome)) in batch.drain(..).zip(engine.start_many(&names)) {
            match outcome {
                Ok(()) => {
                    report("Container", &name, "Started");
                    started.push(name);
                }
                Err(e) => {
                    failed.get_or_insert(Error::Failed(format!(
                        "service {service:?}: starting container {name}: {e}"
                    )));
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        pending = still;
        if !progressed {
            std::thread::sleep(POLL);
        }
    }
    if failures.is_empty() {
        Ok(started)
    } else {
        Err(Error::Failed(failures.join("\n")))
    }
}

/// `--wait`: until every container runs, and is healthy where it has a
/// healthcheck.
fn wait_ready(
    engine: &Engine,
    containers: &[String],
    timeout: Option<Duration>,
    report: Report<'_>,
) -> Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut done: BTreeSet<&String> = BTreeSet::new();
    loop {
        for name in containers {
            if done.contains(name) {
                continue;
            }
            let c = engine.container(name)?;
            if !c.is_running() && c.state.status != Status::Restarting {
                // A one-shot service that completed is fine, as docker's.
                if c.state.exit_code == 0 && c.state.health.is_none() {
                    report("Container", name, "Exited");
                    done.insert(name);
                    continue;
                }
                return Err(Error::Failed(format!(
                    "container {name} exited ({})",
                    c.state.exit_code
                )));
            }
            match c.state.health.as_ref().map(|h| h.status) {
                None => {
                    report("Container", name, "Healthy");
                    done.insert(name);
                }
                Some(HealthStatus::Healthy) => {
                    report("Container", name, "Healthy");
                    done.insert(name);
                }
                Some(HealthStatus::Unhealthy) => {
                    return Err(Error::Failed(format!("container {name} is unhealthy")))
                }
                Some(HealthStatus::Starting) => {}
            }
        }
        if done.len() == containers.len() {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::Failed(format!(
                "application not healthy after {}s",
                timeout.unwrap_or_default().as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Options of `compose run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The service.
    pub service: String,
    /// The command (empty: the service's).
    pub command: Vec<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `-e K=V` additions.
    pub env: Vec<String>,
    /// `-l K=V` additions.
    pub labels: BTreeMap<String, String>,
    /// `--name`.
    pub name: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// Leave the dependencies alone.
    pub no_deps: bool,
    /// Publish the service's ports (they are left out otherwise).
    pub service_ports: bool,
    /// `-p` publications.
    pub publish: Vec<String>,
    /// `-v` mounts.
    pub volumes: Vec<String>,
    /// `--rm`.
    pub rm: bool,
    /// A terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub interactive: bool,
    /// Build the image first.
    pub build: bool,
    /// Give the container the service's network aliases.
    pub use_aliases: bool,
    /// `--dry-run`: check and report, create nothing.
    pub dry_run: bool,
}

fn random_slug() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `compose run`: start the service's dependencies (as `up` would, their
/// conditions honoured), then create a one-off container of the service
/// with the command given. Returns its name; the caller starts it.
pub fn create_oneoff(
    engine: &Engine,
    project: &Project,
    opts: &RunOptions,
    build_out: &mut dyn Write,
    report: Report<'_>,
) -> Result<String> {
    let Some(base) = project.services.get(&opts.service) else {
        return Err(Error::NoSuchService(opts.service.clone()));
    };
    if !opts.no_deps && !base.depends_on.is_empty() {
        let deps: Vec<String> = base
            .depends_on
            .keys()
            .filter(|d| project.services.contains_key(*d))
            .cloned()
            .collect();
        up(
            engine,
            project,
            &UpOptions {
                services: deps,
                dry_run: opts.dry_run,
                ..Default::default()
            },
            build_out,
            report,
        )?;
    }
    let order = vec![opts.service.clone()];
    ensure_networks(engine, project, &order, opts.dry_run, report)?;
    ensure_volumes(engine, project, &order, opts.dry_run, report)?;
    let up_opts = UpOptions {
        build: opts.build,
        dry_run: opts.dry_run,
        ..Default::default()
    };
    ensure_image(engine, project, base, &up_opts, build_out, report)?;
    let mut service = base.clone();
    if !opts.command.is_empty() {
        service.command = Some(opts.command.clone());
    }
    if opts.entrypoint.is_some() {
        service.entrypoint = opts.entrypoint.clone();
        if opts.command.is_empty() {
            service.command = None;
        }
    }
    for e in &opts.env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        if e.contains('=') {
            service.environment.insert(k.to_string(), v.to_string());
        } else if let Some(v) = project.environment.get(k) {
            service.environment.insert(k.to_string(), v.clone());
        }
    }
    service.labels.extend(opts.labels.clone());
    if opts.user.is_some() {
        service.user = opts.user.clone();
    }
    if opts.workdir.is_some() {
        service.working_dir = opts.workdir.clone();
    }
    if !opts.service_ports {
        service.ports.clear();
    }
    // docker compose runs one-off containers without the restart policy.
    service.restart = None;
    if let Some(d) = service.deploy.as_mut() {
        d.restart_policy = None;
    }
    service.container_name = None;
    service.tty = opts.tty;
    service.stdin_open = opts.interactive;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-run-{}", project.name, service.name, random_slug()));
    let image = project::image_name(project, &service);
    let image_id = present_image_id(engine, &service, &image, opts.dry_run)?;
    let hash = project::config_hash(&service);
    let mut labels = project::container_labels(project, &service, 1, true, &hash, &image_id);
    labels.insert("com.docker.compose.slug".into(), name.clone());
    let mut ctx = Context {
        files: if opts.dry_run {
            BTreeMap::new()
        } else {
            prepare_files(engine, project, &order)?
        },
        ..Context::default()
    };
    // `network_mode: service:X` joins X's first container.
    for m in project::members(engine, &project.name)? {
        if m.number == 1 && !m.oneoff {
            ctx.joined
                .insert(m.service.clone(), m.container.name().to_string());
        }
    }
    if opts.dry_run {
        // Services a dry run did not really start: their would-be names.
        for s in project.services.values() {
            ctx.joined
                .entry(s.name.clone())
                .or_insert_with(|| project::container_name(project, s, 1));
        }
    }
    let mut req = convert::create_request(project, &service, &name, &image, labels, &ctx)?;
    // As docker compose: a one-off container answers to no service alias
    // (unless `--use-aliases`).
    if !opts.use_aliases {
        req.network_aliases.clear();
    }
    for p in &opts.publish {
        req.ports.extend(
            engine::config::PortMapping::parse(p)
                .map_err(|e| Error::Invalid(format!("invalid -p {p:?}: {e}")))?,
        );
    }
    req.volumes.extend(opts.volumes.iter().cloned());
    req.auto_remove = opts.rm;
    if opts.dry_run {
        report("Container", &name, "Created");
        return Ok(name);
    }
    convert::create_bind_sources(&service)?;
    engine.create(&req).map_err(|e| {
        Error::Failed(format!(
            "service {:?}: creating container {name}: {e}",
            service.name
        ))
    })?;
    if service.network_mode.is_none() {
        for key in convert::ordered_networks(&service).iter().skip(1) {
            let net = &project.networks[key];
            let sn = &service.networks[key];
            let aliases = if opts.use_aliases {
                convert::aliases(&service, sn)
            } else {
                Vec::new()
            };
            engine.network_connect(
                &net.name,
                &name,
                &engine::networks::Endpoint {
                    aliases,
                    ..Default::default()
                },
            )?;
        }
    }
    Ok(name)
}
