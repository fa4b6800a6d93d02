//! `system df`, `system prune`, `container prune`.
use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;

use clap::Args;
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::Failure;

/// `container prune`.
#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// `system prune`.
#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Prune anonymous volumes too.
    #[arg(long)]
    volumes: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// `system check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Fix what is berth's alone (leftovers of crashes); report the rest.
    #[arg(short, long)]
    repair: bool,
    /// Skip hashing every blob.
    #[arg(short, long)]
    quick: bool,
}

/// `system check`: problems by kind, each with what `--repair` does or
/// what to do; with `--repair`, what was done and what is left. Exit 0
/// when nothing is (left) wrong, 1 otherwise.
pub fn check(engine: &Engine, a: CheckArgs) -> Result<(), Failure> {
    use engine::check::{by_area, CheckOptions, Remedy};
    let opts = CheckOptions { quick: a.quick };
    let report = engine.check(opts)?;
    if report.problems.is_empty() {
        println!("No problems found: {}.", checked(&report));
        return Ok(());
    }
    let repaired = if a.repair {
        engine.repair(&report.problems)
    } else {
        Vec::new()
    };
    let mut printed = BTreeSet::new();
    for (area, problems) in by_area(&report.problems) {
        let fixed = problems
            .iter()
            .filter(|p| {
                repaired
                    .iter()
                    .any(|r| r.problem == ***p && r.result.is_ok())
            })
            .count();
        if a.repair {
            println!("{area}: {} found, {fixed} repaired", problems.len());
        } else {
            let n = problems.len();
            println!("{area}: {n} problem{}", if n == 1 { "" } else { "s" });
        }
        for p in problems {
            printed.insert(p.to_string());
            let outcome = repaired.iter().find(|r| r.problem == *p);
            match (outcome, p.remedy()) {
                (Some(r), Remedy::Repair { done, .. }) => match &r.result {
                    Ok(()) => println!("  {p}: repaired: {done}"),
                    Err(e) => println!("  {p}: not repaired: {e}"),
                },
                (_, Remedy::Repair { does, .. }) => {
                    println!("  {p}: \"berth system check --repair\" {does}")
                }
                (_, Remedy::Manual(what)) => println!("  {p}: {what}"),
            }
        }
    }
    let left = if a.repair {
        let after = engine.check(opts)?;
        let new: Vec<String> = after
            .problems
            .iter()
            .map(ToString::to_string)
            .filter(|p| !printed.contains(p))
            .collect();
        if !new.is_empty() {
            println!("found after the repair:");
            for p in &new {
                println!("  {p}");
            }
        }
        after.problems
    } else {
        report.problems
    };
    println!();
    match left.len() {
        0 => {
            println!("Every problem was repaired.");
            return Ok(());
        }
        n if a.repair => println!(
            "{n} problem{} left: see above for what to do.",
            if n == 1 { "" } else { "s" }
        ),
        n => {
            let fixable = left.iter().filter(|p| p.repairable()).count();
            println!(
                "{n} problem{} found; \"berth system check --repair\" fixes {fixable} of them.",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    Err(Failure::silent(1))
}

/// What a clean check looked at, in one line.
fn checked(r: &engine::check::CheckReport) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let s = &r.store;
    let c = &r.census;
    let mut blobs = n(s.blobs, "blob", "blobs");
    if s.blobs_verified > 0 {
        blobs.push_str(&format!(" ({} verified)", s.blobs_verified));
    }
    format!(
        "{}, {}, {blobs}, {}, {}, {}, {}; on the host {}, {}, {}, {}, {}",
        n(s.images, "image", "images"),
        n(s.layers, "layer", "layers"),
        n(s.containers, "container", "containers"),
        n(s.volumes, "volume", "volumes"),
        n(s.networks, "network", "networks"),
        n(s.leases, "lease", "leases"),
        n(c.processes.len(), "process", "processes"),
        n(c.cgroups.len(), "cgroup", "cgroups"),
        n(c.mounts.len(), "mount", "mounts"),
        n(c.links.len(), "interface", "interfaces"),
        n(c.rules.len(), "firewall rule", "firewall rules"),
    )
}

/// `system df`.
#[derive(Args, Debug)]
pub struct DfArgs {
    /// table, json or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Every image, container, volume and build cache entry, with sizes.
    #[arg(short, long)]
    verbose: bool,
}

fn confirm(what: &str, force: bool) -> bool {
    if force || !std::io::stdin().is_terminal() {
        return true;
    }
    eprint!("WARNING! This will remove:\n{what}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Remove every stopped container: (ids, bytes).
fn prune_containers(engine: &Engine) -> Result<(Vec<String>, u64), Failure> {
    let r = engine.prune_containers(&engine::filters::Filters::default())?;
    Ok((r.deleted, r.reclaimed))
}

/// `container prune`.
pub fn container_prune(engine: &Engine, a: ContainerPruneArgs) -> Result<(), Failure> {
    if !confirm("  - all stopped containers", a.force) {
        return Ok(());
    }
    let (ids, size) = prune_containers(engine)?;
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for i in &ids {
            println!("{i}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", format::human_size(size));
    Ok(())
}

/// `system prune`: stopped containers, unused networks, dangling (or
/// all unused) images, and with `--volumes` unused anonymous volumes.
pub fn system_prune(engine: &Engine, a: SystemPruneArgs) -> Result<(), Failure> {
    let mut what = vec![
        "  - all stopped containers",
        "  - all networks not used by at least one container",
    ];
    if a.volumes {
        what.push("  - all anonymous volumes not used by at least one container");
    }
    what.push(if a.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    });
    if !confirm(&what.join("\n"), a.force) {
        return Ok(());
    }
    let (ids, mut reclaimed) = prune_containers(engine)?;
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for i in &ids {
            println!("{i}");
        }
        println!();
    }
    let nets = engine.network_prune()?;
    if !nets.is_empty() {
        println!("Deleted Networks:");
        for n in &nets {
            println!("{n}");
        }
        println!();
    }
    if a.volumes {
        let v = engine.volume_prune(false, |_| true)?;
        if !v.removed.is_empty() {
            println!("Deleted Volumes:");
            for n in &v.removed {
                println!("{n}");
            }
            println!();
        }
        reclaimed += v.reclaimed;
    }
    let imgs = engine.prune_images(a.all)?;
    if !imgs.deleted.is_empty() {
        println!("Deleted Images:");
        for d in &imgs.deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    reclaimed += imgs.reclaimed;
    println!("Total reclaimed space: {}", format::human_size(reclaimed));
    Ok(())
}

fn pct(part: u64, total: u64) -> String {
    if total == 0 {
        format!("{} (0%)", format::human_size(part))
    } else {
        format!(
            "{} ({}%)",
            format::human_size(part),
            part * 100 / total.max(1)
        )
    }
}

/// `system df`: space used by images, containers, volumes, build cache.
pub fn df(engine: &Engine, a: DfArgs) -> Result<(), Failure> {
    let containers = engine.containers()?;
    let images = engine.image_records()?;
    let used_images: BTreeSet<String> = containers
        .iter()
        .map(|c| c.record.image_id.to_string())
        .collect();
    // Layers are shared: each counted once; reclaimable are those no
    // image in use has.
    let mut layer_size: HashMap<String, u64> = HashMap::new();
    let mut used_layers = BTreeSet::new();
    for img in &images {
        for d in &img.diff_ids {
            let s = engine.layer_size(d)?.unwrap_or(0);
            layer_size.insert(d.to_string(), s);
            if used_images.contains(&img.id.to_string()) {
                used_layers.insert(d.to_string());
            }
        }
    }
    let img_total: u64 = layer_size.values().sum();
    let img_reclaim: u64 = layer_size
        .iter()
        .filter(|(d, _)| !used_layers.contains(*d))
        .map(|(_, s)| s)
        .sum();
    let mut ctr_total = 0;
    let mut ctr_reclaim = 0;
    let mut running = 0;
    for c in &containers {
        let s = engine.container_size_rw(c.id());
        ctr_total += s;
        if c.is_running() {
            running += 1;
        } else {
            ctr_reclaim += s;
        }
    }
    let volumes = engine.volumes()?;
    let in_use = engine.volumes_in_use()?;
    let mut vol_total = 0;
    let mut vol_reclaim = 0;
    for v in &volumes {
        let s = engine.volume_size(v);
        vol_total += s;
        if !in_use.contains(&v.name) {
            vol_reclaim += s;
        }
    }
    if a.verbose {
        return df_verbose(engine, &images, &containers, &layer_size);
    }
    let row = |t: &str, total: usize, active: usize, size: u64, reclaim: u64| {
        let mut r = Row::new();
        r.insert("Type", t.to_string());
        r.insert("TotalCount", total.to_string());
        r.insert("Active", active.to_string());
        r.insert("Size", format::human_size(size));
        r.insert("Reclaimable", pct(reclaim, size));
        r
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            images
                .iter()
                .filter(|i| used_images.contains(&i.id.to_string()))
                .count(),
            img_total,
            img_reclaim,
        ),
        row(
            "Containers",
            containers.len(),
            running,
            ctr_total,
            ctr_reclaim,
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|v| in_use.contains(&v.name)).count(),
            vol_total,
            vol_reclaim,
        ),
        {
            let cached = engine.build_cache_images()?.len();
            let size = engine.build_cache_size()?;
            row("Build Cache", cached, 0, size, size)
        },
    ];
    const COLS: &[(&str, &str)] = &[
        ("TYPE", "Type"),
        ("TOTAL", "TotalCount"),
        ("ACTIVE", "Active"),
        ("SIZE", "Size"),
        ("RECLAIMABLE", "Reclaimable"),
    ];
    print!(
        "{}",
        format::print(
            &Format::parse(a.format.as_deref(), COLS),
            &rows,
            &format::DF
        )?
    );
    Ok(())
}

/// `system df -v`: Docker's four sections, one line per object.
fn df_verbose(
    engine: &Engine,
    images: &[engine::image::ImageRecord],
    containers: &[engine::container::Container],
    layer_size: &HashMap<String, u64>,
) -> Result<(), Failure> {
    // How many images hold each layer: a layer held by more than one is
    // shared.
    let mut holders: HashMap<String, usize> = HashMap::new();
    for img in images {
        for d in img.diff_ids.iter().collect::<BTreeSet<_>>() {
            *holders.entry(d.to_string()).or_default() += 1;
        }
    }
    let cached = engine.build_cache_images()?;
    let mut rows = Vec::new();
    for img in images {
        if cached.contains(&img.id.to_string()) && img.repo_tags.is_empty() {
            continue;
        }
        let layers: BTreeSet<String> = img.diff_ids.iter().map(|d| d.to_string()).collect();
        let size: u64 = layers
            .iter()
            .map(|d| layer_size.get(d).copied().unwrap_or(0))
            .sum();
        let shared: u64 = layers
            .iter()
            .filter(|d| holders.get(*d).copied().unwrap_or(0) > 1)
            .map(|d| layer_size.get(d).copied().unwrap_or(0))
            .sum();
        let users = containers
            .iter()
            .filter(|c| c.record.image_id == img.id)
            .count();
        let created = img
            .created
            .map(|t| format!("{} ago", format::human_duration(chrono::Utc::now() - t)))
            .unwrap_or_default();
        let names: Vec<(String, String)> = if img.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            img.repo_tags
                .iter()
                .map(|t| (t.familiar_name(), t.tag().unwrap_or("<none>").to_string()))
                .collect()
        };
        for (repo, tag) in names {
            let mut r = Row::new();
            r.insert("Repository", repo);
            r.insert("Tag", tag);
            r.insert("ID", img.id.short().to_string());
            r.insert("CreatedSince", created.clone());
            r.insert("Size", format::human_size(size));
            r.insert("SharedSize", format::human_size(shared));
            r.insert("UniqueSize", format::human_size(size - shared));
            r.insert("Containers", users.to_string());
            rows.push(r);
        }
    }
    println!("Images space usage:\n");
    print!(
        "{}",
        format::print(
            &Format::parse(
                None,
                &[
                    ("REPOSITORY", "Repository"),
                    ("TAG", "Tag"),
                    ("IMAGE ID", "ID"),
                    ("CREATED", "CreatedSince"),
                    ("SIZE", "Size"),
                    ("SHARED SIZE", "SharedSize"),
                    ("UNIQUE SIZE", "UniqueSize"),
                    ("CONTAINERS", "Containers"),
                ],
            ),
            &rows,
            &format::DF,
        )?
    );
    let mut rows = Vec::new();
    for c in containers {
        let mut r = crate::commands::container::container_row(c, false);
        let volumes = c
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == engine::config::MountType::Volume)
            .count();
        r.insert("LocalVolumes", volumes.to_string());
        r.insert("Size", format::human_size(engine.container_size_rw(c.id())));
        rows.push(r);
    }
    println!("\nContainers space usage:\n");
    print!(
        "{}",
        format::print(
            &Format::parse(
                None,
                &[
                    ("CONTAINER ID", "ID"),
                    ("IMAGE", "Image"),
                    ("COMMAND", "Command"),
                    ("LOCAL VOLUMES", "LocalVolumes"),
                    ("SIZE", "Size"),
                    ("CREATED", "RunningFor"),
                    ("STATUS", "Status"),
                    ("NAMES", "Names"),
                ],
            ),
            &rows,
            &format::DF,
        )?
    );
    let mut rows = Vec::new();
    for v in engine.volumes()? {
        let links = containers
            .iter()
            .filter(|c| {
                c.config
                    .mounts
                    .iter()
                    .any(|m| m.kind == engine::config::MountType::Volume && m.source == v.name)
            })
            .count();
        let mut r = Row::new();
        r.insert("Name", v.name.clone());
        r.insert("Links", links.to_string());
        r.insert("Size", format::human_size(engine.volume_size(&v)));
        rows.push(r);
    }
    println!("\nLocal Volumes space usage:\n");
    print!(
        "{}",
        format::print(
            &Format::parse(
                None,
                &[
                    ("VOLUME NAME", "Name"),
                    ("LINKS", "Links"),
                    ("SIZE", "Size")
                ],
            ),
            &rows,
            &format::DF,
        )?
    );
    // Build cache: each cached step's image, sized by its top layer.
    let mut rows = Vec::new();
    for img in images.iter().filter(|i| cached.contains(&i.id.to_string())) {
        let top = img
            .diff_ids
            .last()
            .map(|d| d.to_string())
            .unwrap_or_default();
        let mut r = Row::new();
        r.insert("ID", img.id.short().to_string());
        r.insert("CacheType", "regular".to_string());
        r.insert(
            "Size",
            format::human_size(layer_size.get(&top).copied().unwrap_or(0)),
        );
        r.insert(
            "CreatedSince",
            img.created
                .map(|t| format!("{} ago", format::human_duration(chrono::Utc::now() - t)))
                .unwrap_or_default(),
        );
        r.insert(
            "Shared",
            (holders.get(&top).copied().unwrap_or(0) > 1).to_string(),
        );
        rows.push(r);
    }
    println!(
        "\nBuild cache usage: {}\n",
        format::human_size(engine.build_cache_size()?)
    );
    print!(
        "{}",
        format::print(
            &Format::parse(
                None,
                &[
                    ("CACHE ID", "ID"),
                    ("CACHE TYPE", "CacheType"),
                    ("SIZE", "Size"),
                    ("CREATED", "CreatedSince"),
                    ("SHARED", "Shared"),
                ],
            ),
            &rows,
            &format::DF,
        )?
    );
    Ok(())
}

/// `stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// All containers (default: running ones).
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Print one reading and exit.
    #[arg(long)]
    pub(crate) no_stream: bool,
    /// Full ids.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// table, json or a Go template.
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Containers (default: all running).
    pub(crate) containers: Vec<String>,
}

/// Docker's binary sizes for memory (`1.5MiB`).
pub(crate) fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(5)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[i]
    }
}

/// `stats`: CPU %, memory, network and block I/O, pids per container;
/// refreshed every second unless `--no-stream`.
pub fn stats(engine: &Engine, a: StatsArgs) -> Result<(), Failure> {
    use engine::container::ops::StatsSample;
    let pick = || -> Result<Vec<engine::container::Container>, Failure> {
        if a.containers.is_empty() {
            Ok(engine
                .containers()?
                .into_iter()
                .filter(|c| a.all || c.is_running())
                .collect())
        } else {
            a.containers
                .iter()
                .map(|n| engine.container(n).map_err(Failure::from))
                .collect()
        }
    };
    let sample = |c: &engine::container::Container| -> StatsSample {
        if c.is_running() {
            engine.stats_sample(c).unwrap_or_default()
        } else {
            StatsSample::default()
        }
    };
    let mut prev: HashMap<String, StatsSample> = HashMap::new();
    for c in pick()? {
        prev.insert(c.id().as_str().to_string(), sample(&c));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    const COLS: &[(&str, &str)] = &[
        ("CONTAINER ID", "ID"),
        ("NAME", "Name"),
        ("CPU %", "CPUPerc"),
        ("MEM USAGE / LIMIT", "MemUsage"),
        ("MEM %", "MemPerc"),
        ("NET I/O", "NetIO"),
        ("BLOCK I/O", "BlockIO"),
        ("PIDS", "PIDs"),
    ];
    loop {
        let mut rows = Vec::new();
        let mut now = HashMap::new();
        for c in pick()? {
            let s = sample(&c);
            let p = prev.get(c.id().as_str()).cloned().unwrap_or_default();
            let mut r = Row::new();
            let id = c.id().as_str();
            r.insert(
                "ID",
                if a.no_trunc {
                    id.to_string()
                } else {
                    id[..12].to_string()
                },
            );
            r.insert("Container", id[..12].to_string());
            r.insert("Name", c.name().to_string());
            let running = c.is_running();
            r.insert(
                "CPUPerc",
                if running {
                    format!("{:.2}%", s.cpu_percent(&p))
                } else {
                    "0.00%".into()
                },
            );
            r.insert(
                "MemUsage",
                format!(
                    "{} / {}",
                    binary_size(s.mem_usage),
                    binary_size(s.mem_limit)
                ),
            );
            r.insert(
                "MemPerc",
                format!(
                    "{:.2}%",
                    if s.mem_limit > 0 {
                        s.mem_usage as f64 * 100.0 / s.mem_limit as f64
                    } else {
                        0.0
                    }
                ),
            );
            r.insert(
                "NetIO",
                format!(
                    "{} / {}",
                    format::human_size(s.net_rx),
                    format::human_size(s.net_tx)
                ),
            );
            r.insert(
                "BlockIO",
                format!(
                    "{} / {}",
                    format::human_size(s.blk_read),
                    format::human_size(s.blk_write)
                ),
            );
            r.insert("PIDs", s.pids.to_string());
            rows.push(r);
            now.insert(id.to_string(), s);
        }
        let table = format::print(
            &Format::parse(a.format.as_deref(), COLS),
            &rows,
            &format::STATS,
        )?;
        if a.no_stream {
            print!("{table}");
            return Ok(());
        }
        // Redraw in place, as docker stats does.
        print!("\x1b[2J\x1b[H{table}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        prev = now;
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn binary_sizes() {
        assert_eq!(super::binary_size(512), "512B");
        assert_eq!(super::binary_size(1536), "1.5KiB");
        assert_eq!(super::binary_size(64 << 20), "64MiB");
        assert_eq!(super::binary_size(1_234_567_890), "1.149GiB");
    }
}

/// `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show events since a timestamp (RFC 3339), Unix seconds or a duration (10m).
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this time, then exit.
    #[arg(long)]
    until: Option<String>,
    /// Filter: type=, container=, image=, event=, network=, volume=, label=.
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Output format: json or a Go template ({{.Action}}).
    #[arg(long)]
    format: Option<String>,
}

/// `events`: what happened in this berth (every berth process writes
/// its events to one log), replayed from `--since`, then live.
pub fn events(engine: &Engine, a: EventsArgs) -> Result<(), Failure> {
    use std::io::Write;
    let filter = engine::events::Filter::parse(&a.filter)
        .map_err(|e| crate::commands::container::bad("--filter", e))?;
    let since = a
        .since
        .as_deref()
        .map(|s| crate::commands::container::parse_time("--since", s))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| crate::commands::container::parse_time("--until", s))
        .transpose()?;
    let root = engine.paths().root.clone();
    // Follow from now first, so nothing written meanwhile is lost.
    let mut tail = engine::events::Tail::at_end(&root);
    let started = chrono::Utc::now();
    let stdout = std::io::stdout();
    let template = match a.format.as_deref() {
        None | Some("") | Some("json") | Some("{{json .}}") => None,
        Some(t) => Some(format::EventTemplate::parse(t)?),
    };
    let failed = std::cell::RefCell::new(None);
    let show = |e: &engine::events::Event| -> bool {
        if !filter.matches(e) {
            return true;
        }
        let text = match (&template, a.format.as_deref()) {
            (Some(t), _) => match t.render(&serde_json::to_value(e).unwrap_or_default()) {
                Ok(s) => s,
                Err(f) => {
                    *failed.borrow_mut() = Some(f);
                    return false;
                }
            },
            (None, None | Some("")) => e.line(),
            (None, _) => serde_json::to_string(e).unwrap_or_default(),
        };
        let mut out = stdout.lock();
        writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
    };
    if let Some(s) = since {
        for e in engine::events::read_stored(&root) {
            let t = e.when();
            if t >= s && t < started && until.is_none_or(|u| t < u) && !show(&e) {
                return failed.take().map_or(Ok(()), Err);
            }
        }
    }
    loop {
        if until.is_some_and(|u| chrono::Utc::now() >= u) {
            return Ok(());
        }
        for e in tail.poll() {
            if until.is_some_and(|u| e.when() >= u) {
                return Ok(());
            }
            if !show(&e) {
                return failed.take().map_or(Ok(()), Err);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `system boot`: start the containers whose restart policy says they
/// should be running (after a reboot: the run dir is empty, no monitor is
/// left). Meant for a boot-time unit (README).
pub fn boot(engine: &Engine) -> Result<(), Failure> {
    let engine::container::ops::BootReport { started, failed } = engine.boot()?;
    for c in &started {
        println!("{}", c.name());
    }
    for (c, e) in &failed {
        eprintln!("berth: starting {}: {e}", c.name());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::silent(1))
    }
}

/// `version` / `info` arguments.
#[derive(Args, Debug)]
pub struct AboutArgs {
    /// A Go template (or json).
    #[arg(short = 'f', long)]
    format: Option<String>,
}

/// Print `doc` through `--format` when given (Docker's `types.Version` /
/// `types.Info` structs; a bad template exits 64 as docker's); else `text()`.
fn about(
    doc: serde_json::Value,
    name: &str,
    type_name: &str,
    format: Option<&str>,
    text: impl FnOnce() -> String,
) -> Result<(), Failure> {
    match format {
        Some("json") => println!("{}", serde_json::to_string(&doc).unwrap_or_default()),
        Some(t) => {
            let bad = |e: String| Failure::msg(64, format!("Template parsing error: {e}"));
            let tmpl = template::Template::parse_named(name, t).map_err(|e| bad(e.to_string()))?;
            let shape = template::Shape {
                type_name,
                maps: &["Runtimes", "Server.Components.Details"],
                ..Default::default()
            };
            let out = tmpl
                .execute(&shape.apply(&doc))
                .map_err(|e| bad(e.to_string()))?;
            println!("{out}");
        }
        None => print!("{}", text()),
    }
    Ok(())
}

/// `version`: the client and the engine (one binary).
pub fn version(engine: &Engine, a: AboutArgs) -> Result<(), Failure> {
    let v = engine.version();
    let doc = serde_json::to_value(&v).unwrap_or_default();
    about(
        doc,
        "version",
        "types.VersionInfo",
        a.format.as_deref(),
        || {
            let c = &v.client;
            let s = &v.server;
            let mut out = format!(
            "Client:\n Version:           {}\n API version:       {}\n Go version:        {}\n Git commit:        {}\n Built:             {}\n OS/Arch:           {}/{}\n Context:           {}\n Experimental:      {}\n\nServer:\n",
            c.version, c.api_version, c.go_version, c.git_commit, c.build_time, c.os, c.arch, c.context, c.experimental
        );
            for comp in &s.components {
                if comp.name == "Engine" {
                    out.push_str(&format!(
                    " Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  Go version:       {}\n  Git commit:       {}\n  Built:            {}\n  OS/Arch:          {}/{}\n  Experimental:     false\n",
                    s.version, s.api_version, s.min_api_version, s.go_version, s.git_commit, s.build_time, s.os, s.arch
                ));
                } else {
                    out.push_str(&format!(
                        " {}:\n  Version:          {}\n",
                        comp.name, comp.version
                    ));
                }
            }
            out
        },
    )
}

/// `info` / `system info`.
pub fn info(engine: &Engine, a: AboutArgs) -> Result<(), Failure> {
    let i = engine.info().map_err(super::container::daemon_error)?;
    let doc = serde_json::to_value(&i).unwrap_or_default();
    about(doc, "", "types.Info", a.format.as_deref(), || {
        let mut o = String::from("Client:\n Context:    default\n Debug Mode: false\n\nServer:\n");
        o.push_str(&format!(
            " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
            i.containers, i.containers_running, i.containers_paused, i.containers_stopped, i.images, i.server_version, i.driver
        ));
        for [k, v] in &i.driver_status {
            o.push_str(&format!("  {k}: {v}\n"));
        }
        o.push_str(&format!(
            " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Plugins:\n  Volume: {}\n  Network: {}\n  Log: {}\n",
            i.logging_driver, i.cgroup_driver, i.cgroup_version,
            i.plugins.volume.join(" "), i.plugins.network.join(" "), i.plugins.log.join(" ")
        ));
        o.push_str(&format!(
            " Runtimes: {}\n Default Runtime: {}\n Init Binary: {}\n Security Options:\n",
            i.runtimes.keys().cloned().collect::<Vec<_>>().join(" "),
            i.default_runtime,
            i.init_binary
        ));
        for s in &i.security_options {
            let name = s.split(',').next().unwrap_or(s).trim_start_matches("name=");
            o.push_str(&format!("  {name}\n"));
            if let Some(p) = s.split(',').find_map(|kv| kv.strip_prefix("profile=")) {
                o.push_str(&format!("   Profile: {p}\n"));
            }
        }
        o.push_str(&format!(
            " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: false\n Experimental: false\n Insecure Registries:\n",
            i.kernel_version, i.operating_system, i.os_type, i.architecture, i.ncpu,
            bytes_size(i.mem_total), i.name, i.id, i.docker_root_dir
        ));
        for r in &i.insecure_registries {
            o.push_str(&format!("  {r}\n"));
        }
        o.push_str(&format!(
            " Live Restore Enabled: {}\n\n",
            i.live_restore_enabled
        ));
        for w in &i.warnings {
            o.push_str(w);
            o.push('\n');
        }
        o
    })
}

/// Go's `units.BytesSize`: binary units, four significant digits
/// (`23.54GiB`), as `docker info` prints memory.
fn bytes_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

#[cfg(test)]
mod about_tests {
    #[test]
    fn bytes_size_as_go_units() {
        assert_eq!(super::bytes_size(25_275_654_144), "23.54GiB");
        assert_eq!(super::bytes_size(1024), "1KiB");
        assert_eq!(super::bytes_size(512), "512B");
    }
}
