//! Platforms: `--platform`, the predefined platform ARGs, and a build
//! for several platforms at once.

use std::io::Write;

use model::Digest;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::Engine;
use registry::manifest::Platform;

use super::{invalid, BuildRequest, Output};

/// Parse `--platform` / `FROM --platform` (`os/arch[/variant]`; only
/// linux images run here).
pub fn parse_platform(p: &str) -> Result<Platform> {
    let parsed = Platform::parse(p).map_err(|e| invalid("--platform", e))?;
    if parsed.os != "linux" {
        return Err(invalid(
            "--platform",
            format!("{p}: berth builds linux images only"),
        ));
    }
    Ok(parsed)
}

pub(super) fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The platform an image config says it is for.
pub(super) fn config_platform(config: &Value) -> Platform {
    Platform {
        os: config["os"].as_str().unwrap_or("linux").to_string(),
        architecture: config["architecture"].as_str().unwrap_or("").to_string(),
        variant: config["variant"].as_str().map(str::to_string),
    }
}

/// BuildKit's predefined platform ARGs: BUILD* is this machine, TARGET*
/// the platform the build is for.
pub(super) fn platform_args(target: &Platform) -> Vec<(&'static str, String)> {
    let host = Platform::host();
    vec![
        ("BUILDPLATFORM", platform_string(&host)),
        ("BUILDOS", host.os.clone()),
        ("BUILDARCH", host.architecture.clone()),
        ("BUILDVARIANT", host.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM", platform_string(target)),
        ("TARGETOS", target.os.clone()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone().unwrap_or_default()),
    ]
}

impl Engine {
    /// `--platform a,b,…`: the build once per platform, written as one
    /// result: an OCI layout whose index names one image index of the
    /// platforms' images (`-o type=oci`), or a directory per platform
    /// (`-o type=local`, `DIR/linux_arm64/…`). The images are not tagged:
    /// the store keeps one image per name.
    pub fn build_platforms(
        &self,
        req: &BuildRequest,
        platforms: &[Platform],
        out: &mut dyn Write,
    ) -> Result<Vec<Digest>> {
        let output = match &req.output {
            Some(o @ (Output::Archive(store::ArchiveFormat::Oci, ..) | Output::Local(_))) => o,
            _ => {
                return Err(invalid(
                    "--platform",
                    "a build for several platforms needs -o type=oci,dest=FILE or -o type=local,dest=DIR (the image store and docker archives keep one platform per name)",
                ))
            }
        };
        let mut ids = Vec::new();
        for p in platforms {
            let _ = writeln!(out, "building for {}", platform_string(p));
            let mut one = req.clone();
            one.platform = Some(p.clone());
            one.output = None;
            one.tags = Vec::new();
            ids.push(self.build(&one, out)?);
        }
        match output {
            Output::Archive(_, dest, compress) => {
                let mut w: Box<dyn Write> = if dest == "-" {
                    Box::new(std::io::stdout())
                } else {
                    Box::new(std::io::BufWriter::new(
                        std::fs::File::create(dest)
                            .map_err(|e| EngineError::io(format!("creating {dest}"), e))?,
                    ))
                };
                self.store()
                    .save_platforms(&ids, &req.tags, &mut w, *compress)?;
                w.flush()
                    .map_err(|e| EngineError::io("writing the archive", e))?;
            }
            Output::Local(dir) => {
                for (p, id) in platforms.iter().zip(&ids) {
                    let sub = platform_string(p).replace('/', "_");
                    self.export_build(id, &Output::Local(dir.join(sub)), &[])?;
                }
            }
            Output::Tar(_) | Output::Image { .. } => unreachable!("refused above"),
        }
        Ok(ids)
    }
}
