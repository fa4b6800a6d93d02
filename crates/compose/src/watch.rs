//! `compose watch` (Compose's `develop.watch`): poll the rules' host paths
//! and, on a change, copy the changed files into the service's running
//! containers (`sync`), restart them (`restart`, `sync+restart`) or rebuild
//! the image and recreate the service (`rebuild`).
//!
//! Polling (every 500 ms, file sizes and modification times) rather than
//! inotify: it needs no watch descriptors per directory, sees changes made
//! while a sync or a rebuild runs, and a development tree is small.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use engine::container::exec::ExecRequest;
use engine::container::fs::{CpEnd, CpOptions};
use engine::Engine;

use crate::model::{Project, WatchRule};
use crate::project;
use crate::up::{Report, UpOptions};
use crate::{Error, Result};

/// How often the paths are looked at.
pub const POLL: Duration = Duration::from_millis(500);

/// A file's identity for change detection.
type Stamp = (SystemTime, u64);

/// Every file under `root` (or `root` itself) not ignored by `ignore`
/// (patterns relative to `root`: `name`, `dir/`, `*.ext`, `**/x`).
pub fn snapshot(root: &Path, ignore: &[String]) -> BTreeMap<PathBuf, Stamp> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p.strip_prefix(root).unwrap_or(&p);
        if !rel.as_os_str().is_empty() && ignored(rel, meta.is_dir(), ignore) {
            continue;
        }
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                todo.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            out.insert(
                p,
                (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                ),
            );
        }
    }
    out
}

fn glob(pattern: &str, name: &str) -> bool {
    engine::filters::glob(pattern, name)
}

/// Whether `rel` (relative to the rule's path) matches an ignore pattern.
fn ignored(rel: &Path, is_dir: bool, ignore: &[String]) -> bool {
    let rel_s = rel.to_string_lossy();
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ignore.iter().any(|pat| {
        let (pat, dir_only) = match pat.strip_suffix('/') {
            Some(p) => (p, true),
            None => (pat.as_str(), false),
        };
        if dir_only && !is_dir {
            return false;
        }
        let pat = pat.trim_start_matches("./");
        if let Some(rest) = pat.strip_prefix("**/") {
            return glob(rest, &name) || glob(rest, &rel_s);
        }
        if pat.contains('/') {
            glob(pat, &rel_s)
        } else {
            glob(pat, &name)
        }
    })
}

/// What changed between two snapshots: (changed or new, removed).
pub fn diff(
    before: &BTreeMap<PathBuf, Stamp>,
    after: &BTreeMap<PathBuf, Stamp>,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let changed = after
        .iter()
        .filter(|(p, s)| before.get(*p) != Some(s))
        .map(|(p, _)| p.clone())
        .collect();
    let removed = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    (changed, removed)
}

fn devnull() -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| Error::Failed(format!("opening /dev/null: {e}")))
}

/// Run `cmd` in the container, output discarded; its exit code.
fn exec_quiet(engine: &Engine, container: &str, cmd: &[&str]) -> Result<i32> {
    let req = ExecRequest {
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        user: Some("0".into()),
        workdir: None,
        tty: false,
    };
    let pid = engine.exec(container, &req, [devnull()?, devnull()?, devnull()?])?;
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => continue,
            Err(e) => return Err(Error::Failed(format!("waiting for exec: {e}"))),
        }
    }
}

/// The container path a host file of `rule` goes to.
fn target_of(rule: &WatchRule, file: &Path) -> Option<String> {
    let target = rule.target.as_ref()?;
    let rel = file.strip_prefix(&rule.path).ok()?;
    if rel.as_os_str().is_empty() {
        return Some(target.clone());
    }
    Some(format!(
        "{}/{}",
        target.trim_end_matches('/'),
        rel.to_string_lossy()
    ))
}

/// Copy `changed` into (and delete `removed` from) every running
/// container of `service`.
fn sync(
    engine: &Engine,
    project: &Project,
    service: &str,
    rule: &WatchRule,
    changed: &[PathBuf],
    removed: &[PathBuf],
) -> Result<()> {
    let members = project::members(engine, &project.name)?;
    for m in members
        .iter()
        .filter(|m| m.service == service && !m.oneoff && m.container.is_running())
    {
        let name = m.container.name();
        for f in changed {
            let Some(dst) = target_of(rule, f) else {
                continue;
            };
            let parent = Path::new(&dst)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            exec_quiet(engine, name, &["mkdir", "-p", &parent])?;
            engine.copy(
                &CpEnd::Host(f.clone()),
                &CpEnd::Container(name.to_string(), PathBuf::from(&dst)),
                CpOptions::default(),
            )?;
        }
        for f in removed {
            if let Some(dst) = target_of(rule, f) {
                exec_quiet(engine, name, &["rm", "-rf", &dst])?;
            }
        }
    }
    Ok(())
}

/// Watch the `develop.watch` rules of `services` (all when empty) until
/// What a watch rule does on a change.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Copy the changed files in, then restart when asked.
    Sync {
        restart: bool,
    },
    Restart,
    Rebuild,
}

/// The step of a rule's `action` (the loader accepts only these). The
/// command of `sync+exec` is not run by berth (the loader warns): its
/// files are synced.
fn step(action: &str) -> Step {
    match action {
        "sync" | "sync+exec" => Step::Sync { restart: false },
        "sync+restart" => Step::Sync { restart: true },
        "restart" => Step::Restart,
        _ => Step::Rebuild,
    }
}

/// `stop` (called between polls, with the time to wait) says so.
pub fn watch(
    engine: &Engine,
    project: &Project,
    services: &[String],
    build_out: &mut dyn Write,
    report: Report<'_>,
    stop: &dyn Fn(Duration) -> bool,
) -> Result<()> {
    let mut rules: Vec<(String, WatchRule)> = Vec::new();
    for (name, s) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        for r in s.develop.iter().flat_map(|d| d.watch.iter()) {
            if r.action.starts_with("sync") && r.target.is_none() {
                return Err(Error::Invalid(format!(
                    "service {name:?}: a {} watch rule needs a target",
                    r.action
                )));
            }
            if r.action == "rebuild" && s.build.is_none() {
                return Err(Error::Invalid(format!(
                    "service {name:?}: a rebuild watch rule needs a build section"
                )));
            }
            rules.push((name.clone(), r.clone()));
        }
    }
    if rules.is_empty() {
        return Err(Error::Invalid(
            "none of the selected services is configured for watch, consider setting a 'develop' section".into(),
        ));
    }
    let mut snaps: Vec<BTreeMap<PathBuf, Stamp>> = rules
        .iter()
        .map(|(_, r)| snapshot(Path::new(&r.path), &r.ignore))
        .collect();
    report("Watch", "", "Watch enabled");
    while !stop(POLL) {
        for (i, (service, rule)) in rules.iter().enumerate() {
            let now = snapshot(Path::new(&rule.path), &rule.ignore);
            let (changed, removed) = diff(&snaps[i], &now);
            snaps[i] = now;
            if changed.is_empty() && removed.is_empty() {
                continue;
            }
            let n = changed.len() + removed.len();
            match step(&rule.action) {
                Step::Sync { restart } => {
                    report(
                        "Watch",
                        service,
                        &format!("Syncing service {service:?} after {n} changes were detected"),
                    );
                    sync(engine, project, service, rule, &changed, &removed)?;
                    if restart {
                        crate::ops::act(
                            engine,
                            project,
                            std::slice::from_ref(service),
                            crate::ops::Action::Restart,
                            None,
                            report,
                        )?;
                    }
                }
                Step::Restart => {
                    report(
                        "Watch",
                        service,
                        &format!("Restarting service {service:?} after changes were detected"),
                    );
                    crate::ops::act(
                        engine,
                        project,
                        std::slice::from_ref(service),
                        crate::ops::Action::Restart,
                        None,
                        report,
                    )?;
                }
                Step::Rebuild => {
                    report(
                        "Watch",
                        service,
                        &format!("Rebuilding service {service:?} after changes were detected..."),
                    );
                    let opts = UpOptions {
                        services: vec![service.clone()],
                        no_deps: true,
                        build: true,
                        ..Default::default()
                    };
                    // A failed build is reported and watching goes on, as
                    // docker compose does.
                    if let Err(e) = crate::up::up(engine, project, &opts, build_out, report) {
                        report("Watch", service, &format!("Error: {e}"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns_and_diffs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("src/node_modules")).unwrap();
        std::fs::write(root.join("src/a.js"), "a").unwrap();
        std::fs::write(root.join("src/a.tmp"), "t").unwrap();
        std::fs::write(root.join("src/node_modules/x.js"), "x").unwrap();
        let ignore = vec!["node_modules/".to_string(), "*.tmp".to_string()];
        let s1 = snapshot(root, &ignore);
        let names: Vec<String> = s1
            .keys()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["src/a.js"]);
        std::fs::write(root.join("src/a.js"), "changed").unwrap();
        std::fs::write(root.join("src/b.js"), "new").unwrap();
        let s2 = snapshot(root, &ignore);
        let (changed, removed) = diff(&s1, &s2);
        assert_eq!(changed.len(), 2);
        assert!(removed.is_empty());
        std::fs::remove_file(root.join("src/a.js")).unwrap();
        let (_, removed) = diff(&s2, &snapshot(root, &ignore));
        assert_eq!(removed, [root.join("src/a.js")]);
    }

    #[test]
    fn actions_sync_restart_or_rebuild() {
        assert_eq!(step("sync"), Step::Sync { restart: false });
        assert_eq!(step("sync+exec"), Step::Sync { restart: false });
        assert_eq!(step("sync+restart"), Step::Sync { restart: true });
        assert_eq!(step("restart"), Step::Restart);
        assert_eq!(step("rebuild"), Step::Rebuild);
    }

    #[test]
    fn targets_follow_the_rule() {
        let r = WatchRule {
            action: "sync".into(),
            path: "/src/app".into(),
            target: Some("/app/".into()),
            ignore: Vec::new(),
        };
        assert_eq!(
            target_of(&r, Path::new("/src/app/lib/x.py")).as_deref(),
            Some("/app/lib/x.py")
        );
        assert_eq!(target_of(&r, Path::new("/elsewhere/x")), None);
    }
}
