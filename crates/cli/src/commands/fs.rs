//! `diff`, `export`, `commit`, `cp`.
use std::io::IsTerminal;
use std::os::fd::OwnedFd;

use clap::Args;
use engine::container::fs::{CpEnd, CpOptions};
use engine::Engine;

use crate::Failure;

/// `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The container.
    container: String,
}

/// `diff`: A/C/D lines, as Docker prints them.
pub fn diff(engine: &Engine, a: DiffArgs) -> Result<(), Failure> {
    for (path, kind) in engine.diff(&a.container)? {
        println!("{} {}", kind.letter(), path.display());
    }
    Ok(())
}

/// `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub(crate) output: Option<std::path::PathBuf>,
    /// The container.
    pub(crate) container: String,
}

/// `export`: the flattened filesystem as a tar stream.
pub fn export(engine: &Engine, a: ExportArgs) -> Result<(), Failure> {
    match &a.output {
        Some(p) => super::write_file_atomically(p, |f| {
            engine
                .export(&a.container, OwnedFd::from(f))
                .map_err(Failure::from)
        })?,
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure::msg(
                    125,
                    "cowardly refusing to save to a terminal: use the -o flag or redirect",
                ));
            }
            let out = std::io::stdout()
                .as_fd_owned()
                .map_err(|e| Failure::msg(125, format!("stdout: {e}")))?;
            engine.export(&a.container, out)?;
        }
    }
    Ok(())
}

trait AsFdOwned {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd>;
}

impl AsFdOwned for std::io::Stdout {
    fn as_fd_owned(&self) -> std::io::Result<OwnedFd> {
        std::os::fd::AsFd::as_fd(self).try_clone_to_owned()
    }
}

/// `commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME).
    #[arg(short = 'c', long = "change")]
    pub(crate) change: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub(crate) message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    pub(crate) author: Option<String>,
    /// Pause the container while committing (default true).
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) pause: bool,
    /// The container.
    pub(crate) container: String,
    /// REPOSITORY[:TAG] for the new image.
    pub(crate) reference: Option<String>,
}

/// `commit`: prints the new image's id.
pub fn commit(engine: &Engine, a: CommitArgs) -> Result<(), Failure> {
    let reference = a
        .reference
        .as_deref()
        .map(|r| {
            r.parse::<model::Reference>()
                .map_err(|e| Failure::msg(125, format!("invalid reference format {r:?}: {e}")))
        })
        .transpose()?;
    let changes = a
        .change
        .iter()
        .map(|c| engine::image::parse_change(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::msg(125, format!("invalid --change: {e}")))?;
    let img = engine.commit(
        &a.container,
        a.pause,
        &engine::container::fs::CommitOptions {
            reference,
            changes,
            message: a.message,
            author: a.author,
            created_by: String::new(),
            config: None,
        },
    )?;
    println!("{}", img.id);
    Ok(())
}

/// `cp`.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode: keep uid/gid.
    #[arg(short, long)]
    archive: bool,
    /// Follow a symlink at the source.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Accepted for compatibility (no progress is printed).
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream on stdin).
    src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream on stdout).
    dest: String,
}

/// `cp`.
pub fn cp(engine: &Engine, a: CpArgs) -> Result<(), Failure> {
    let src = CpEnd::parse(&a.src);
    let dest = CpEnd::parse(&a.dest);
    if matches!(&dest, CpEnd::Host(p) if p.as_os_str() == "-") && std::io::stdout().is_terminal() {
        return Err(Failure::msg(
            125,
            "cowardly refusing to write a tar archive to a terminal: redirect stdout",
        ));
    }
    engine
        .copy(
            &src,
            &dest,
            CpOptions {
                archive: a.archive,
                follow: a.follow_link,
            },
        )
        .map_err(|e| {
            // docker's CLI words every "not found" of the daemon's (no
            // such container, no such path in it) the same way.
            let end = [&a.src, &a.dest]
                .into_iter()
                .find(|s| matches!(CpEnd::parse(s), CpEnd::Container(..)));
            match end {
                Some(end) if e.is_not_found() => {
                    Failure::msg(1, format!("No such container:path: {end}"))
                }
                _ => e.into(),
            }
        })?;
    Ok(())
}
