//! Supply-chain verbs: `sbom`, `image referrers` (scan, sign and policy come later).
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

/// `image referrers`.
#[derive(Args, Debug)]
pub struct ReferrersArgs {
    /// Print the document (the artifact's one layer) of this referrer
    /// (a digest or a unique prefix of its hex) instead of the list.
    #[arg(long, value_name = "DIGEST")]
    document: Option<String>,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// Image.
    image: String,
}

/// `image referrers IMAGE`: the OCI 1.1 referrers the store keeps for a
/// local image (what `build --sbom --provenance` attached; `push` sends
/// them after the image).
pub fn referrers(engine: &Engine, a: ReferrersArgs) -> Result<(), Failure> {
    if let Some(d) = &a.document {
        let doc = engine.referrer_document(&a.image, d)?;
        let mut out = std::io::stdout().lock();
        return out
            .write_all(&doc)
            .and_then(|()| out.flush())
            .map_err(|e| Failure::msg(125, format!("writing the document: {e}")));
    }
    let list = engine.image_referrers(&a.image)?;
    match a.format.as_str() {
        "json" => {
            let v = serde_json::to_string_pretty(&list)
                .map_err(|e| Failure::msg(125, format!("encoding the list: {e}")))?;
            println!("{v}");
        }
        "table" => {
            let mut rows = vec!["DIGEST\tARTIFACT TYPE\tSUBJECT\tSIZE\tCREATED\n".to_string()];
            for r in &list {
                rows.push(format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    r.digest, r.artifact_type, r.subject, r.size, r.created
                ));
            }
            print!("{}", crate::format::tabwriter(&rows.concat()));
        }
        f => {
            return Err(Failure::msg(
                125,
                format!("invalid --format {f:?}: use table or json"),
            ))
        }
    }
    Ok(())
}
