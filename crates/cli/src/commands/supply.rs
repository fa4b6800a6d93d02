//! Supply-chain verbs: `sbom` (scan, sign and policy come later).
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use engine::sbom::SbomFormat;
use engine::Engine;

use crate::Failure;

/// `sbom`.
#[derive(Args, Debug)]
pub struct SbomArgs {
    /// Output format: table, spdx-json (SPDX 2.3) or cyclonedx-json (CycloneDX 1.6).
    #[arg(long, default_value = "table", value_parser = parse_format)]
    format: SbomFormat,
    /// Write the document to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Image.
    image: String,
}

fn parse_format(s: &str) -> Result<SbomFormat, String> {
    s.parse()
}

/// `sbom IMAGE`: the packages of a local image, read from its layers
/// without running it. What the scanners skipped is told on stderr.
pub fn sbom(engine: &Engine, a: SbomArgs) -> Result<(), Failure> {
    let sbom = engine.sbom(&a.image)?;
    let doc = sbom
        .render(a.format)
        .map_err(|e| Failure::msg(125, e.to_string()))?;
    for n in &sbom.notes {
        eprintln!("berth: sbom: {n}");
    }
    match &a.output {
        Some(path) => super::write_file_atomically(path, |mut f| {
            f.write_all(doc.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Failure::msg(125, format!("cannot write {}: {e}", path.display())))
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(doc.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::msg(125, format!("writing the SBOM: {e}")))
        }
    }
}
