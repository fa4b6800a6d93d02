//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the image as
//! the package the document describes, every package it contains with
//! its purl, version, declared licence and the layer it came from.
//! Licences that are not SPDX expressions become `LicenseRef-`s with
//! their words as the extracted text.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::{license, Sbom};

const NOASSERTION: &str = "NOASSERTION";

/// `[A-Za-z0-9.-]` only, as SPDX identifiers allow.
fn idstring(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() {
        "x".into()
    } else {
        out
    }
}

/// The `LicenseRef-`s made for licences that are no SPDX expression: the
/// words → their id, kept unique.
#[derive(Default)]
struct Refs {
    by_text: BTreeMap<String, String>,
}

impl Refs {
    fn id(&mut self, text: &str) -> String {
        if let Some(id) = self.by_text.get(text) {
            return id.clone();
        }
        let base = format!("LicenseRef-{}", idstring(text));
        let mut id = base.clone();
        let mut n = 2;
        while self.by_text.values().any(|v| *v == id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        self.by_text.insert(text.to_string(), id.clone());
        id
    }

    /// The declared licence of a package with these licences.
    fn declared(&mut self, licenses: &[String]) -> String {
        let parts: Vec<String> = licenses
            .iter()
            .map(|l| match license::expression(l) {
                Some(e) if licenses.len() > 1 && (e.contains(" OR ") || e.contains(" AND ")) => {
                    format!("({e})")
                }
                Some(e) => e,
                None => self.id(l),
            })
            .collect();
        if parts.is_empty() {
            NOASSERTION.into()
        } else {
            parts.join(" AND ")
        }
    }
}

/// The SPDX 2.3 JSON document of `sbom`, made at `created` (RFC 3339,
/// seconds, `Z`) with namespace id `uuid`.
pub fn document(sbom: &Sbom, created: &str, uuid: &str) -> Value {
    let mut refs = Refs::default();
    let image_id = "SPDXRef-Image";
    let mut image = json!({
        "name": sbom.image.name,
        "SPDXID": image_id,
        "versionInfo": sbom.image.id,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    });
    if let Some(hex) = sbom.image.id.strip_prefix("sha256:") {
        image["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": hex}]);
    }
    let mut packages = vec![image];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    for (i, p) in sbom.packages.iter().enumerate() {
        let id = format!(
            "SPDXRef-Package-{}-{}-{}",
            p.ecosystem.type_name(),
            idstring(&p.name),
            i + 1
        );
        let mut v = json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": refs.declared(&p.licenses),
            "copyrightText": NOASSERTION,
            "sourceInfo": format!(
                "acquired package info from {} in layer {}",
                p.locations.join(", "),
                p.layer
            ),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        });
        if let Some(s) = p.source.as_ref().filter(|s| **s != p.name) {
            v["sourceInfo"] = json!(format!(
                "{}; source package {s}",
                v["sourceInfo"].as_str().unwrap_or_default()
            ));
        }
        packages.push(v);
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": sbom.image.name,
        "documentNamespace": format!(
            "https://berth.invalid/spdx/{}-{uuid}",
            idstring(&sbom.image.name)
        ),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: berth-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !refs.by_text.is_empty() {
        doc["hasExtractedLicensingInfos"] = refs
            .by_text
            .iter()
            .map(|(text, id)| json!({"licenseId": id, "name": text, "extractedText": text}))
            .collect();
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_refs_are_unique_and_declared_licences_combine() {
        let mut r = Refs::default();
        assert_eq!(r.declared(&[]), "NOASSERTION");
        assert_eq!(
            r.declared(&["GPL-2+".into(), "public domain".into()]),
            "GPL-2.0-or-later AND LicenseRef-public-domain"
        );
        assert_eq!(r.id("public_domain"), "LicenseRef-public-domain-2");
        assert_eq!(r.id("public domain"), "LicenseRef-public-domain");
        assert_eq!(
            r.declared(&["MIT or Apache-2.0".into(), "Zlib".into()]),
            "(MIT OR Apache-2.0) AND Zlib"
        );
    }
}
