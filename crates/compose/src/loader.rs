//! Reading Compose files into the normalized [`Project`], as `docker compose`
//! v2 (compose-go) does: find the files, read `.env`, pick the project
//! name, then for each file parse the YAML (keeping every node's line),
//! interpolate variables, resolve `include` and `extends`, merge the files
//! in order, and finally type and normalize the merged tree (short syntax
//! to long, relative paths to absolute, profiles applied, references
//! checked). Errors name the file, the line and the key path:
//! `compose.yaml:12: services.web.ports[1]: invalid port "abc": ...`.
//!
//! The stages live in their own modules: `yaml` (the positioned tree),
//! `files` (discovery, environment, project name, reading, interpolation),
//! `include`, `extends`, `merge` (the override rules), `typed` (typed
//! access with key paths), `normalize` (profiles, top level, consistency),
//! `service`, `service_fields`, `ports`, `volumes` and `resources` (the
//! objects), and `emit` (`compose config`).
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::envfile::EnvFileError;
use crate::model::Project;

mod emit;
mod extends;
mod files;
mod include;
mod merge;
mod normalize;
mod ports;
mod resources;
mod service;
mod service_fields;
mod typed;
mod volumes;
mod words;
mod yaml;

pub use emit::to_yaml;

/// What `load` reads, as the `compose` command line and environment give it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` (several, merged in order; `-` is stdin). Empty: `COMPOSE_FILE`,
    /// else `compose.yaml` (and its override file) searched from
    /// `working_dir` upward.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`; default: the first file's directory.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (several). Empty: `.env` of the project directory, when
    /// it exists.
    pub env_files: Vec<PathBuf>,
    /// `--profile`; empty: `COMPOSE_PROFILES` (comma separated).
    pub profiles: Vec<String>,
    /// The process environment (it wins over `.env`).
    pub environment: BTreeMap<String, String>,
    /// Where relative `-f` paths are taken from and discovery starts (the cwd).
    pub working_dir: PathBuf,
}

/// A place in a Compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, relative to the working directory when under it.
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No `-f`, no `COMPOSE_FILE` and no `compose.yaml` found.
    #[error("no configuration file provided: not found")]
    NoConfigFile,
    /// A file could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `.env`, `--env-file` or `env_file:` file is malformed.
    #[error("failed to read {}: {source}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        source: EnvFileError,
    },
    /// The YAML is malformed.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// A key or value the Compose Specification does not allow, or a
    /// project that is inconsistent (an undefined volume, a dependency
    /// cycle...).
    #[error("{location}: {}{message}", key_prefix(key))]
    Invalid {
        /// Where the offending value is written.
        location: Location,
        /// Its key path (`services.web.ports[1]`); empty for the file itself.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `-p` or `COMPOSE_PROJECT_NAME` is not a valid project name.
    #[error("invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName {
        /// The name given.
        name: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Load the project the options describe.
pub fn load(opts: &LoadOptions) -> Result<Project, LoadError> {
    files::load(opts)
}
