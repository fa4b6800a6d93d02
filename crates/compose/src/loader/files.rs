//! The first half of loading: which files, which environment, which
//! project name; then each file parsed, interpolated, its `include` and
//! `extends` resolved, and the files merged in order. The merged tree goes
//! to [`normalize`](super::normalize).
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::typed::{self, invalid, location, Result};
use super::yaml::{self, KeyPath, Map, Node, Source, Sources, Value};
use super::{extends, include, merge, normalize, LoadError, LoadOptions};
use crate::envfile;
use crate::interpolate;
use crate::model::Project;

pub(crate) type Env = BTreeMap<String, String>;

/// Compose file names looked for, in order of preference (compose-go's).
const FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_NAMES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// Reads files and keeps what every stage shares: the files read (for
/// positions) and the warnings.
pub(crate) struct Reader {
    pub sources: Sources,
    pub warnings: Vec<String>,
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
}

impl Reader {
    pub fn warn(&mut self, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }

    /// `path` relative to the working directory when under it.
    fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.cwd) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
            _ => path.to_string_lossy().into_owned(),
        }
    }

    /// `p` made absolute against `base` (`~` against the home directory).
    pub fn resolve(&self, base: &Path, p: &str) -> PathBuf {
        PathBuf::from(typed::resolve_path(base, self.home.as_deref(), p))
    }

    /// Read and parse one file, registering it with `base_dir` as what its
    /// relative paths are relative to. `-` reads stdin.
    pub fn parse_file(&mut self, path: &Path, base_dir: &Path) -> Result<(usize, Node)> {
        let text = if path == Path::new("-") {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|source| LoadError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
            s
        } else {
            std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?
        };
        let id = self.sources.add(Source {
            display: self.display(path),
            path: path.to_path_buf(),
            base_dir: base_dir.to_path_buf(),
        });
        let node = yaml::parse(&text, id).map_err(|e| LoadError::Syntax {
            location: location(
                &self.sources,
                yaml::Pos {
                    source: id,
                    line: e.line,
                },
            ),
            message: e.message,
        })?;
        Ok((id, node))
    }

    /// Replace variables in every string value of `node`.
    pub fn interpolate(&mut self, node: &mut Node, path: &KeyPath, env: &Env) -> Result<()> {
        match &mut node.value {
            Value::Str(s) if s.contains('$') => {
                let out = interpolate::substitute(s, &|k| env.get(k).cloned())
                    .map_err(|e| invalid(&self.sources, node.pos, path, e.to_string()))?;
                *s = out.value;
                for var in out.unset {
                    self.warn(format!(
                        "The {var:?} variable is not set. Defaulting to a blank string."
                    ));
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate(item, &path.index(i), env)?;
                }
            }
            Value::Map(m) => {
                for e in &mut m.entries {
                    self.interpolate(&mut e.value, &path.key(&e.key), env)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Interpolate one parsed file and resolve its `include` and `extends`:
    /// its top-level mapping, ready to merge.
    pub fn process(
        &mut self,
        id: usize,
        mut node: Node,
        env: &Env,
        chain: &mut Vec<PathBuf>,
    ) -> Result<Map> {
        if node.is_null() {
            return Err(LoadError::Invalid {
                location: location(&self.sources, node.pos),
                key: String::new(),
                message: "empty compose file".into(),
            });
        }
        if node.as_map().is_none() {
            return Err(invalid(
                &self.sources,
                node.pos,
                &KeyPath::root(),
                "top-level object must be a mapping",
            ));
        }
        self.interpolate(&mut node, &KeyPath::root(), env)?;
        let Value::Map(mut top) = node.value else {
            unreachable!("checked above");
        };
        if top.remove("version").is_some() {
            let file = &self.sources.get(id).display;
            self.warn(format!(
                "{file}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
            ));
        }
        include::apply(self, &mut top, env, chain)?;
        extends::apply(self, &mut top, env)?;
        Ok(top)
    }

    /// Process the files and merge them in order. `chain` holds the files
    /// being processed, outermost first (to refuse `include` cycles).
    pub fn merge_files(
        &mut self,
        files: Vec<(usize, Node)>,
        env: &Env,
        chain: &mut Vec<PathBuf>,
    ) -> Result<Node> {
        let mut merged: Option<Node> = None;
        for (id, node) in files {
            let pos = yaml::Pos {
                source: id,
                line: 1,
            };
            chain.push(self.sources.get(id).path.clone());
            let top = self.process(id, node, env, chain);
            chain.pop();
            let top = Node::new(Value::Map(top?), pos);
            merged = Some(match merged {
                None => {
                    let mut top = top;
                    merge::drop_resets(&mut top);
                    top
                }
                Some(base) => merge::merge(&self.sources, base, top, &KeyPath::root())?,
            });
        }
        Ok(merged.unwrap_or_else(|| Node::new(Value::Map(Map::default()), yaml::Pos::default())))
    }

    /// Read env files into `env`, keeping the values already there.
    pub fn read_env_files(&self, files: &[PathBuf], env: &mut Env) -> Result<()> {
        let mut from_files = Env::new();
        for f in files {
            let text = std::fs::read_to_string(f).map_err(|source| LoadError::Read {
                path: f.clone(),
                source,
            })?;
            let pairs = envfile::parse(&text, &|k| {
                env.get(k).or_else(|| from_files.get(k)).cloned()
            })
            .map_err(|source| LoadError::EnvFile {
                path: f.clone(),
                source,
            })?;
            from_files.extend(pairs);
        }
        for (k, v) in from_files {
            env.entry(k).or_insert(v);
        }
        Ok(())
    }
}

/// Look for a Compose file in `dir` and its parents; the file found and the
/// override file next to it.
fn discover(dir: &Path, warnings: &mut Vec<String>) -> Option<Vec<PathBuf>> {
    let pick = |names: &[&str], dir: &Path, warnings: &mut Vec<String>| -> Option<PathBuf> {
        let found: Vec<PathBuf> = names
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        if found.len() > 1 {
            let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
            warnings.push(format!(
                "Found multiple config files with supported names: {}; using {}",
                names.join(", "),
                names[0]
            ));
        }
        found.into_iter().next()
    };
    let mut dir = Some(dir);
    while let Some(d) = dir {
        if let Some(main) = pick(FILE_NAMES, d, warnings) {
            let mut files = vec![main];
            files.extend(pick(OVERRIDE_NAMES, d, warnings));
            return Some(files);
        }
        dir = d.parent();
    }
    None
}

/// docker compose's `NormalizeProjectName`.
pub(crate) fn normalize_project_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

fn checked_name(name: &str) -> Result<String> {
    if normalize_project_name(name) != name {
        return Err(LoadError::ProjectName {
            name: name.to_string(),
        });
    }
    Ok(name.to_string())
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p == Path::new("-") {
        return p.to_path_buf();
    }
    typed::clean(&cwd.join(p))
}

/// The whole load; see the module documentation of [`super`].
pub(crate) fn load(opts: &LoadOptions) -> Result<Project> {
    let cwd = if opts.working_dir.is_absolute() {
        opts.working_dir.clone()
    } else {
        std::env::current_dir()
            .map(|d| d.join(&opts.working_dir))
            .unwrap_or_else(|_| opts.working_dir.clone())
    };
    let cwd = typed::clean(&cwd);
    let home = opts
        .environment
        .get("HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
    let mut r = Reader {
        sources: Sources::default(),
        warnings: Vec::new(),
        cwd: cwd.clone(),
        home,
    };
    let explicit_dir = opts.project_directory.as_ref().map(|d| absolute(&cwd, d));
    let first_file_dir = opts
        .files
        .iter()
        .find(|f| f.as_path() != Path::new("-"))
        .and_then(|f| absolute(&cwd, f).parent().map(Path::to_path_buf));

    // The environment: the process's, then `.env` of where compose starts
    // (it may set COMPOSE_FILE).
    let mut env = opts.environment.clone();
    let env_files: Vec<PathBuf> = opts.env_files.iter().map(|f| absolute(&cwd, f)).collect();
    let start_dir = explicit_dir
        .clone()
        .or(first_file_dir)
        .unwrap_or_else(|| cwd.clone());
    let mut dotenv_read = false;
    if !env_files.is_empty() {
        r.read_env_files(&env_files, &mut env)?;
    } else if start_dir.join(".env").is_file() {
        r.read_env_files(&[start_dir.join(".env")], &mut env)?;
        dotenv_read = true;
    }

    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| absolute(&cwd, f)).collect()
    } else if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or(":");
        list.split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| absolute(&cwd, Path::new(f)))
            .collect()
    } else {
        let from = explicit_dir.as_deref().unwrap_or(&cwd);
        discover(from, &mut r.warnings).ok_or(LoadError::NoConfigFile)?
    };
    let project_dir = explicit_dir.unwrap_or_else(|| {
        files
            .iter()
            .find(|f| f.as_path() != Path::new("-"))
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| cwd.clone())
    });
    // Found upward: the project directory's `.env` when the start had none.
    if env_files.is_empty() && !dotenv_read && project_dir != start_dir {
        let dotenv = project_dir.join(".env");
        if dotenv.is_file() {
            r.read_env_files(&[dotenv], &mut env)?;
        }
    }

    let mut parsed = Vec::new();
    for f in &files {
        parsed.push(r.parse_file(f, &project_dir)?);
    }

    let name = project_name(&mut r, opts, &env, &parsed, &project_dir)?;
    env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());

    let profiles: Vec<String> = if !opts.profiles.is_empty() {
        opts.profiles.clone()
    } else {
        env.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut model = r.merge_files(parsed, &env, &mut Vec::new())?;
    merge::unique(&mut model);

    let mut project = normalize::project(
        &mut r,
        &model,
        normalize::Settings {
            name,
            env: &env,
            profiles: &profiles,
        },
    )?;
    project.working_dir = project_dir;
    project.files = files;
    project.warnings = r.warnings;
    project.environment = env;
    Ok(project)
}

/// `-p`, `COMPOSE_PROJECT_NAME`, the files' `name:` (the last one set),
/// the project directory's name.
fn project_name(
    r: &mut Reader,
    opts: &LoadOptions,
    env: &Env,
    parsed: &[(usize, Node)],
    project_dir: &Path,
) -> Result<String> {
    if let Some(p) = opts.project_name.as_deref().filter(|p| !p.is_empty()) {
        return checked_name(p);
    }
    if let Some(p) = env.get("COMPOSE_PROJECT_NAME").filter(|p| !p.is_empty()) {
        return checked_name(p);
    }
    let from_files = parsed
        .iter()
        .filter_map(|(_, n)| n.as_map()?.get("name").cloned())
        .rfind(|n| n.scalar_text().is_some_and(|s| !s.is_empty()));
    if let Some(mut n) = from_files {
        r.interpolate(&mut n, &KeyPath::of(&["name"]), env)?;
        let name = normalize_project_name(&n.scalar_text().unwrap_or_default());
        if !name.is_empty() {
            return Ok(name);
        }
    }
    let dir = project_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = normalize_project_name(&dir);
    if name.is_empty() {
        return Err(LoadError::ProjectName { name: dir });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_normalize_as_docker_compose() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("__-x_y"), "x_y");
        assert_eq!(normalize_project_name("déjà"), "dj");
        assert!(checked_name("ok-name_1").is_ok());
        assert!(checked_name("Bad").is_err());
        assert!(checked_name("-x").is_err());
    }
}
