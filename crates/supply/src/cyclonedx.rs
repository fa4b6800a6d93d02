//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>), written
//! with serde: the `cyclonedx-bom` crate (0.8.1, the newest here) emits
//! specs 1.3–1.5 only. The image is `metadata.component` (type
//! `container`); each package a component with its purl, licences (an
//! SPDX id where the licence is one, else its name) and properties for
//! the layer that brought it, where it was found and its type.
use serde_json::{json, Value};

use crate::{license, Sbom};

/// The CycloneDX 1.6 JSON document of `sbom`, made at `created`
/// (RFC 3339) with serial number `uuid`.
pub fn document(sbom: &Sbom, created: &str, uuid: &str) -> Value {
    let mut image = json!({
        "type": "container",
        "bom-ref": "image",
        "name": sbom.image.name,
        "version": sbom.image.id,
    });
    if let Some(hex) = sbom.image.id.strip_prefix("sha256:") {
        image["hashes"] = json!([{"alg": "SHA-256", "content": hex}]);
    }
    let mut seen = std::collections::HashSet::new();
    let components: Vec<Value> = sbom
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // bom-refs are unique: the purl, or with its index when two
            // copies of one package sit at different paths.
            let bom_ref = if seen.insert(p.purl.clone()) {
                p.purl.clone()
            } else {
                format!("{}#{}", p.purl, i + 1)
            };
            let mut c = json!({
                "type": "library",
                "bom-ref": bom_ref,
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
            });
            if let Some(g) = &p.group {
                c["group"] = json!(g);
            }
            if !p.licenses.is_empty() {
                c["licenses"] = p
                    .licenses
                    .iter()
                    .map(|l| match license::spdx_id(l) {
                        Some(id) => json!({"license": {"id": id}}),
                        None => json!({"license": {"name": l}}),
                    })
                    .collect();
            }
            let mut props = vec![
                json!({"name": "berth:package:type", "value": p.ecosystem.type_name()}),
                json!({"name": "berth:layer", "value": p.layer}),
            ];
            props.extend(
                p.locations
                    .iter()
                    .map(|l| json!({"name": "berth:location", "value": l})),
            );
            if let Some(s) = p.source.as_ref().filter(|s| **s != p.name) {
                props.push(json!({"name": "berth:source", "value": s}));
            }
            if let Some(a) = &p.arch {
                props.push(json!({"name": "berth:arch", "value": a}));
            }
            c["properties"] = json!(props);
            c
        })
        .collect();
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{uuid}"),
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{
                "type": "application",
                "name": "berth",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": image,
        },
        "components": components,
    })
}
