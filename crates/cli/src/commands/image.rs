//! Image verbs: images, tag, rmi, history, import, load, save, image inspect/prune.
use std::io::{IsTerminal, Write};

use chrono::Utc;
use clap::{Args, Subcommand};
use engine::image::{ArchiveFormat, ImageRecord, ImportOptions, RemoveEvent};
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::Failure;

fn bad(what: &str, reason: impl std::fmt::Display) -> Failure {
    Failure::msg(125, format!("invalid {what}: {reason}"))
}

/// `images`.
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (the build cache's intermediate ones too).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate ids.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE],
    /// before=IMAGE, since=IMAGE.
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Output format: table, json or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Only images of this repository[:tag].
    repository: Option<String>,
}

fn short_id(id: &model::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.hex()[..12].to_string()
    }
}

fn rows_for(img: &ImageRecord, a: &ImagesArgs) -> Vec<Row> {
    let mut base = Row::new();
    base.insert("ID", short_id(&img.id, a.no_trunc));
    let created = img.created.unwrap_or_else(Utc::now);
    base.insert(
        "CreatedSince",
        format!("{} ago", format::human_duration(Utc::now() - created)),
    );
    base.insert(
        "CreatedAt",
        created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
    );
    base.insert("Size", format::human_size(img.size));
    // docker 20.10's list: VirtualSize is the size; what a plain `images`
    // does not count (`system df -v` does) is N/A.
    base.insert("VirtualSize", format::human_size(img.size));
    for f in ["Containers", "SharedSize", "UniqueSize"] {
        base.insert(f, "N/A".into());
    }
    base.insert(
        "Digest",
        img.repo_digests
            .first()
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "<none>".into()),
    );
    if img.repo_tags.is_empty() {
        let mut r = base.clone();
        r.insert("Repository", "<none>".into());
        r.insert("Tag", "<none>".into());
        return vec![r];
    }
    img.repo_tags
        .iter()
        .map(|t| {
            let mut r = base.clone();
            r.insert("Repository", t.familiar_name());
            r.insert("Tag", t.tag().unwrap_or("<none>").to_string());
            r
        })
        .collect()
}

/// `images`.
pub fn images(engine: &Engine, a: ImagesArgs) -> Result<(), Failure> {
    let filters = engine::filters::Filters::parse(&a.filter, engine::filters::IMAGE_FILTERS)
        .map_err(super::container::daemon_error)?;
    let list = engine
        .list_images(a.all, &filters)
        .map_err(super::container::daemon_error)?;
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for img in &list {
        let mut ok = true;
        if let Some(repo) = &a.repository {
            ok &= img.repo_tags.iter().any(|t| {
                t.familiar_name() == *repo
                    || t.familiar() == *repo
                    || engine::filters::glob(repo, &t.familiar_name())
            });
        }
        if !ok {
            continue;
        }
        if a.quiet {
            if seen.insert(img.id.clone()) {
                println!("{}", short_id(&img.id, a.no_trunc));
            }
            continue;
        }
        let mut r = rows_for(img, &a);
        // Docker filters references per tag, not per image, and
        // `images REPOSITORY[:TAG]` is such a filter.
        for f in a
            .filter
            .iter()
            .filter_map(|f| f.strip_prefix("reference="))
            .chain(a.repository.as_deref())
        {
            r.retain(|row| {
                let name = &row["Repository"];
                engine::filters::glob(f, name)
                    || engine::filters::glob(f, &format!("{name}:{}", row["Tag"]))
            });
        }
        rows.extend(r);
    }
    if a.quiet {
        return Ok(());
    }
    let cols: &[(&str, &str)] = if a.digests {
        &[
            ("REPOSITORY", "Repository"),
            ("TAG", "Tag"),
            ("DIGEST", "Digest"),
            ("IMAGE ID", "ID"),
            ("CREATED", "CreatedSince"),
            ("SIZE", "Size"),
        ]
    } else {
        &[
            ("REPOSITORY", "Repository"),
            ("TAG", "Tag"),
            ("IMAGE ID", "ID"),
            ("CREATED", "CreatedSince"),
            ("SIZE", "Size"),
        ]
    };
    print!(
        "{}",
        format::print(
            &Format::parse(a.format.as_deref(), cols),
            &rows,
            &format::IMAGES
        )?
    );
    Ok(())
}

/// `tag`.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Source image.
    source: String,
    /// New reference.
    target: String,
}

/// `tag`.
pub fn tag(engine: &Engine, a: TagArgs) -> Result<(), Failure> {
    let img = engine.image(&a.source)?;
    let r: model::Reference = a
        .target
        .parse()
        .map_err(|e| bad("reference format", format!("{:?}: {e}", a.target)))?;
    if r.digest().is_some() {
        return Err(bad("reference format", "a tag cannot contain a digest"));
    }
    engine.tag_image(&img.id, &r)?;
    Ok(())
}

/// `rmi`.
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove even if a container uses it (untags only) or it has several tags.
    #[arg(short = 'f', long)]
    force: bool,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

/// `rmi`.
pub fn rmi(engine: &Engine, a: RmiArgs) -> Result<(), Failure> {
    let mut failed = false;
    for i in &a.images {
        match engine.remove_image(i, a.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(r) => println!("Untagged: {}", r.familiar()),
                        RemoveEvent::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::silent(1))
    } else {
        Ok(())
    }
}

/// `history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Do not truncate.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Human-readable sizes and dates.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Output format.
    #[arg(long)]
    format: Option<String>,
    /// Image.
    image: String,
}

/// `history`.
pub fn history(engine: &Engine, a: HistoryArgs) -> Result<(), Failure> {
    let img = engine.image(&a.image)?;
    let entries = engine.image_history(&img.id)?;
    let mut rows = Vec::new();
    for (i, h) in entries.iter().enumerate() {
        let mut r = Row::new();
        let id = if i == 0 {
            short_id(&img.id, a.no_trunc)
        } else {
            "<missing>".to_string()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        r.insert("ID", id);
        let created = h
            .created
            .map(|c| format!("{} ago", format::human_duration(Utc::now() - c)))
            .unwrap_or_else(|| "N/A".into());
        r.insert("CreatedSince", created);
        let mut by = h.created_by.clone();
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        r.insert("CreatedBy", by);
        r.insert(
            "Size",
            if a.human {
                format::human_size(h.size)
            } else {
                h.size.to_string()
            },
        );
        r.insert("Comment", h.comment.clone());
        rows.push(r);
    }
    if a.quiet {
        return Ok(());
    }
    const COLS: &[(&str, &str)] = &[
        ("IMAGE", "ID"),
        ("CREATED", "CreatedSince"),
        ("CREATED BY", "CreatedBy"),
        ("SIZE", "Size"),
        ("COMMENT", "Comment"),
    ];
    print!(
        "{}",
        format::print(
            &Format::parse(a.format.as_deref(), COLS),
            &rows,
            &format::HISTORY
        )?
    );
    Ok(())
}

/// `import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL).
    #[arg(short = 'c', long = "change")]
    change: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Platform of the image (os/arch[/variant]; default: this machine's).
    #[arg(long)]
    platform: Option<String>,
    /// A tar file, or - for stdin.
    source: String,
    /// REPOSITORY[:TAG] for the new image.
    reference: Option<String>,
}

/// `import`.
pub fn import(engine: &Engine, a: ImportArgs) -> Result<(), Failure> {
    let reference = a
        .reference
        .as_deref()
        .map(|r| {
            r.parse::<model::Reference>()
                .map_err(|e| bad("reference format", format!("{r:?}: {e}")))
        })
        .transpose()?;
    let mut changes = Vec::new();
    for c in &a.change {
        changes.push(engine::image::parse_change(c).map_err(|e| bad("--change", e))?);
    }
    let platform = a
        .platform
        .as_deref()
        .map(|p| engine::distribution::Platform::parse(p).map_err(|e| bad("--platform", e)))
        .transpose()?
        .map(|p| (p.os, p.architecture, p.variant));
    let opts = ImportOptions {
        reference,
        changes,
        message: a.message.clone(),
        platform,
    };
    let record = if a.source == "-" {
        engine.import_image(std::io::stdin().lock(), &opts)?
    } else {
        if a.source.starts_with("http://") || a.source.starts_with("https://") {
            return Err(bad(
                "import source",
                "importing from a URL is not supported; download the file first",
            ));
        }
        let f = std::fs::File::open(&a.source)
            .map_err(|e| bad("import source", format!("{}: {e}", a.source)))?;
        engine.import_image(std::io::BufReader::new(f), &opts)?
    };
    println!("{}", record.id);
    Ok(())
}

/// `load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from a file instead of stdin.
    #[arg(short = 'i', long = "input")]
    input: Option<String>,
    /// Suppress output.
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// `load`.
pub fn load(engine: &Engine, a: LoadArgs) -> Result<(), Failure> {
    let loaded = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| bad("--input", format!("{p}: {e}")))?;
            engine.load_images(std::io::BufReader::new(f))?
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::msg(
                    125,
                    "requested load from stdin, but stdin is empty: use -i FILE or redirect a tar",
                ));
            }
            engine.load_images(std::io::stdin().lock())?
        }
    };
    if !a.quiet {
        for l in loaded {
            if l.tags.is_empty() {
                println!("Loaded image ID: {}", l.id);
            }
            for t in l.tags {
                println!("Loaded image: {}", t.familiar());
            }
        }
    }
    Ok(())
}

/// `save`.
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file instead of stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// Archive format: docker (docker-archive) or oci (OCI image layout).
    #[arg(long, default_value = "docker")]
    format: String,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

/// `save`.
pub fn save(engine: &Engine, a: SaveArgs) -> Result<(), Failure> {
    let format = match a.format.as_str() {
        "docker" | "docker-archive" => ArchiveFormat::Docker,
        "oci" | "oci-archive" => ArchiveFormat::Oci,
        other => return Err(bad("--format", format!("{other:?}: use docker or oci"))),
    };
    match &a.output {
        Some(p) => {
            let tmp = format!("{p}.berth-tmp");
            let f =
                std::fs::File::create(&tmp).map_err(|e| bad("--output", format!("{p}: {e}")))?;
            let mut w = std::io::BufWriter::new(f);
            let r = engine.save_images(&a.images, format, &mut w);
            let r = r
                .map_err(Failure::from)
                .and_then(|()| w.flush().map_err(Failure::from));
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, p)?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure::msg(
                    125,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            let out = std::io::stdout();
            let mut w = std::io::BufWriter::new(out.lock());
            engine.save_images(&a.images, format, &mut w)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// `image prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
}

/// `image prune`.
pub fn prune(engine: &Engine, a: PruneArgs) -> Result<(), Failure> {
    if !a.force && std::io::stdin().is_terminal() {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let report = engine.prune_images(a.all)?;
    if !report.deleted.is_empty() {
        println!("Deleted Images:");
        for d in &report.deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        format::human_size(report.reclaimed)
    );
    Ok(())
}

/// Docker-shaped JSON for one image.
pub fn inspect_image(engine: &Engine, name: &str) -> Result<serde_json::Value, Failure> {
    Ok(engine.inspect_image(name)?)
}

/// `image inspect`.
#[derive(Args, Debug)]
pub struct ImageInspectArgs {
    /// Go template.
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

/// `image …` subcommands.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list", alias = "images")]
    Ls(ImagesArgs),
    /// Build an image from a Dockerfile.
    Build(Box<super::build::BuildArgs>),
    /// Inspect images.
    Inspect(ImageInspectArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Remove images.
    #[command(alias = "rmi", alias = "remove")]
    Rm(RmiArgs),
    /// Tag an image.
    Tag(TagArgs),
    /// Show history.
    History(HistoryArgs),
    /// Import a rootfs tarball.
    Import(ImportArgs),
    /// Load images from an archive.
    Load(LoadArgs),
    /// Save images to an archive.
    Save(SaveArgs),
    /// Download an image from a registry.
    Pull(super::distribution::PullArgs),
    /// Upload an image to a registry.
    Push(super::distribution::PushArgs),
    /// List an image's OCI referrers (build --sbom, --provenance) or print one's document.
    Referrers(super::supply::ReferrersArgs),
}

/// Run an `image …` subcommand.
pub fn dispatch(engine: &Engine, c: ImageCommand) -> Result<(), Failure> {
    match c {
        ImageCommand::Ls(a) => images(engine, a),
        ImageCommand::Pull(a) => super::distribution::pull(engine, a),
        ImageCommand::Push(a) => super::distribution::push(engine, a),
        ImageCommand::Inspect(a) => {
            let mut values = Vec::new();
            let mut failed = false;
            for i in &a.images {
                match inspect_image(engine, i) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        if let Some(m) = e.message {
                            eprintln!("berth: {m}");
                        }
                        failed = true;
                    }
                }
            }
            super::container::print_inspect(&values, a.format.as_deref())?;
            if failed {
                Err(Failure::silent(1))
            } else {
                Ok(())
            }
        }
        ImageCommand::Prune(a) => prune(engine, a),
        ImageCommand::Rm(a) => rmi(engine, a),
        ImageCommand::Build(a) => super::build::build(engine, *a),
        ImageCommand::Tag(a) => tag(engine, a),
        ImageCommand::History(a) => history(engine, a),
        ImageCommand::Import(a) => import(engine, a),
        ImageCommand::Load(a) => load(engine, a),
        ImageCommand::Save(a) => save(engine, a),
        ImageCommand::Referrers(a) => super::supply::referrers(engine, a),
    }
}
