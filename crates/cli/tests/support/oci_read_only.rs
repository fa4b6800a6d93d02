//! The suite's read-only run (its `RO_DATA` inputs, for registries that
//! take no pushes): what the registry already holds is read — tags,
//! manifests by tag and digest, every blob they name — and every write
//! must be refused.
use serde_json::Value;

use super::*;

impl Runner {
    /// Read the images `tags` of this runner's repository name (see
    /// [`Runner::with_repo`]), and try to write.
    pub fn run_read_only(&mut self, tags: &[&str]) {
        self.case("ping", |r| {
            r.call(Request::new("GET", "/v2/"), &[200]).map(|_| ())
        });
        let repo = self.repo.clone();
        self.case("tag-list", |r| {
            let base = r.v2(&repo, "tags/list");
            let (all, _) = r.tags_page(&base)?;
            match tags.iter().find(|t| !all.iter().any(|a| a == *t)) {
                Some(t) => Err(format!("GET {base}: tag {t} missing from {all:?}")),
                None => Ok(()),
            }
        });
        for tag in tags {
            self.case(&format!("tag {tag}"), |r| r.read_image(&repo, tag));
        }
        self.case("writes refused", |r| {
            let writes = [
                ("POST", r.v2(&repo, "blobs/uploads/")),
                ("PUT", r.v2(&repo, "manifests/conformance-ro")),
                ("DELETE", r.v2(&repo, &format!("manifests/{}", tags[0]))),
            ];
            for (method, t) in writes {
                let resp = r.call(
                    Request::new(method, t.clone())
                        .header("Content-Type", MT_MANIFEST)
                        .body(Body::Sized(b"{}")),
                    &[401, 403, 405],
                )?;
                r.check_error(
                    &resp,
                    &["UNSUPPORTED", "DENIED", "UNAUTHORIZED"],
                    &format!("{method} {t}"),
                )?;
            }
            // And the tag is as it was.
            r.call(
                Request::new("HEAD", r.v2(&repo, &format!("manifests/{}", tags[0]))),
                &[200],
            )
            .map(|_| ())
        });
    }

    /// A tag: HEAD and GET agree (media type, length, digest of the
    /// bytes); the same by digest; an index's manifests and an image's
    /// config and layers, each HEAD and GET with its descriptor's size
    /// and a body of its digest; a range of the first layer.
    fn read_image(&mut self, repo: &str, reference: &str) -> R {
        let t = self.v2(repo, &format!("manifests/{reference}"));
        let accept = format!("{MT_INDEX}, {MT_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json");
        let get = self.call(
            Request::new("GET", t.clone()).header("Accept", &accept),
            &[200],
        )?;
        let digest = Algo::Sha256.digest(&get.body);
        let media_type = get
            .header("content-type")
            .ok_or_else(|| format!("GET {t}: no Content-Type"))?
            .to_string();
        let m = Manifest {
            digest: digest.clone(),
            bytes: get.body.clone(),
            media_type,
            subject: None,
        };
        self.check_digest_header(&get, &digest, &format!("GET {t}"))?;
        self.read_manifest("head", repo, reference, &m)?;
        self.read_manifest("head", repo, &digest, &m)?;
        self.read_manifest("pull", repo, &digest, &m)?;
        let v: Value =
            serde_json::from_slice(&m.bytes).map_err(|e| format!("GET {t}: not JSON ({e})"))?;
        if let Some(children) = v["manifests"].as_array() {
            for c in children {
                let d = c["digest"]
                    .as_str()
                    .ok_or_else(|| format!("{t}: a manifest without a digest"))?;
                self.read_image(repo, d)?;
            }
            return Ok(());
        }
        let mut descs = vec![v["config"].clone()];
        descs.extend(v["layers"].as_array().cloned().unwrap_or_default());
        for d in &descs {
            let dig = d["digest"]
                .as_str()
                .ok_or_else(|| format!("{t}: a descriptor without a digest"))?;
            let bt = self.v2(repo, &format!("blobs/{dig}"));
            let body = self.call(Request::new("GET", bt.clone()), &[200])?.body;
            if Algo::Sha256.digest(&body) != dig || Some(body.len() as u64) != d["size"].as_u64() {
                return Err(format!("GET {bt}: {} bytes that are not {d}", body.len()));
            }
            self.head_blob(repo, dig, &body)?;
            self.get_blob(repo, dig, &body)?;
        }
        if let Some(layer) = descs.get(1) {
            let dig = layer["digest"].as_str().unwrap();
            let bt = self.v2(repo, &format!("blobs/{dig}"));
            let r = self.call(
                Request::new("GET", bt.clone()).header("Range", "bytes=0-9"),
                &[206],
            )?;
            if r.body.len() != 10 {
                return Err(format!("GET {bt} bytes=0-9: {} bytes", r.body.len()));
            }
        }
        Ok(())
    }
}
