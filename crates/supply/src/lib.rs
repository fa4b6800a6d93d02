//! Supply chain: what an image is made of, read from its unpacked layers
//! without running it. Today that is the SBOM — the packages of every
//! ecosystem berth knows (Debian's dpkg, Alpine's apk, RPM, Python, Node,
//! Go and Rust binaries, Java archives), each attributed to the layer that
//! brought it, written as SPDX 2.3, CycloneDX 1.6 or a table.
//!
//! It owns the scanners, the per-layer cache and the document formats; it
//! does not know the store's database or references (the engine hands it
//! the layer directories, base first) and never follows a symlink out of a
//! layer directory. It also matches packages against a local OSV database
//! ([`vuln`]) and makes and checks cosign-compatible signatures
//! ([`signing`]).
#![forbid(unsafe_code)]

/// CycloneDX 1.6 JSON.
pub mod cyclonedx;
/// The SBOM as SPDX, CycloneDX or a table.
pub mod document;
/// The crate's error type.
pub mod error;
/// Reading files inside one layer directory, never through a symlink.
pub mod fsview;
/// An image's packages: layers composed bottom-up, the per-layer cache.
pub mod image;
/// Licence names as SPDX license expressions.
pub mod license;
/// The in-toto SLSA provenance statement of a build.
pub mod provenance;
/// Package URLs (purl) per the purl specification.
pub mod purl;
/// One layer's scan: the walk and a module per package ecosystem.
pub mod scan;
/// cosign-compatible signatures and attestations.
pub mod signing;
/// SPDX 2.3 JSON.
pub mod spdx;
/// Vulnerability matching against a local OSV database.
pub mod vuln;

use serde::{Deserialize, Serialize};

pub use document::Format;
pub use error::SupplyError;
pub use image::{scan_image, Cache, ImageInfo, LayerRef, Sbom};

/// The package ecosystems the scanners know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ecosystem {
    /// Debian/Ubuntu packages (dpkg's database).
    Deb,
    /// Alpine packages (apk's database).
    Apk,
    /// RPM packages (the sqlite rpmdb).
    Rpm,
    /// Python distributions (dist-info, egg-info).
    Python,
    /// Node packages (`node_modules/**/package.json`).
    Npm,
    /// Go modules from a binary's build info.
    Go,
    /// Rust crates from a binary's `cargo auditable` data.
    Cargo,
    /// Java archives (`META-INF/maven/**/pom.properties`).
    Maven,
}

impl Ecosystem {
    /// The name shown in the table's TYPE column (syft's words).
    pub fn type_name(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
            Ecosystem::Go => "go-module",
            Ecosystem::Cargo => "rust-crate",
            Ecosystem::Maven => "java-archive",
        }
    }
}

/// One package found in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// Its name (Maven: the artifact id; npm: with its `@scope/`).
    pub name: String,
    /// Its version as the ecosystem writes it (Debian with its epoch, RPM
    /// `[epoch:]version-release`).
    pub version: String,
    /// Its package URL; filled in once the image's distribution is known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub purl: String,
    /// Declared licences (as written by the package; see [`license`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// The diff-id (`sha256:…`) of the layer that brought it; filled in
    /// when the layers are composed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
    /// Where in the image it was found (absolute paths).
    pub locations: Vec<String>,
    /// Architecture (deb, apk, rpm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The source package (deb `Source:`, apk origin, rpm source rpm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Maven group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Package {
    /// A package with no licence, arch, source or group yet.
    pub fn new(ecosystem: Ecosystem, name: &str, version: &str, location: &str) -> Package {
        Package {
            ecosystem,
            name: name.to_string(),
            version: version.to_string(),
            purl: String::new(),
            licenses: Vec::new(),
            layer: String::new(),
            locations: vec![location.to_string()],
            arch: None,
            source: None,
            group: None,
        }
    }

    /// Is `other` the same installed package (name, version, arch)?
    pub fn same_as(&self, other: &Package) -> bool {
        self.ecosystem == other.ecosystem
            && self.name == other.name
            && self.version == other.version
            && self.arch == other.arch
            && self.group == other.group
    }
}
