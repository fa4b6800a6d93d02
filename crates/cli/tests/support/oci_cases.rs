//! The case list, in the suite's order (`TestAll` in run.go): ping, the
//! empty repository, the blob APIs per digest algorithm, each data set
//! pushed, listed, read, its referrers listed and deleted, then manifest
//! errors.
use serde_json::Value;

use super::*;

impl Runner {
    /// Run every case.
    pub fn run_all(&mut self) {
        if self.basic.is_some() {
            self.case("auth", |r| r.challenge());
        }
        self.case("ping", |r| {
            r.call(Request::new("GET", "/v2/"), &[200]).map(|_| ())
        });
        self.group("empty", |r| {
            r.case("tag list", |r| r.empty_tag_list());
            if r.caps.referrers {
                r.case("referrers", |r| {
                    let subject = Algo::Sha256.digest(random_text().as_bytes());
                    let list = r.referrers(&subject)?;
                    if !list.is_empty() {
                        return Err(format!("referrers of an unknown digest: {list:?}"));
                    }
                    Ok(())
                });
            } else {
                r.skip("referrers", "no referrers API");
            }
        });
        self.blob_apis(Algo::Sha256);
        if self.caps.sha512 {
            self.blob_apis(Algo::Sha512);
        } else {
            self.skip("blobs sha512", "no sha512 digests");
        }
        for (set, needs) in data_sets() {
            let missing = match needs {
                Needs::Sha512 if !self.caps.sha512 => Some("no sha512 digests"),
                Needs::TagParam if !self.caps.tag_param => Some("no ?tag= on a manifest PUT"),
                Needs::TagParamSha512 if !(self.caps.tag_param && self.caps.sha512) => {
                    Some("no ?tag= on a manifest PUT or no sha512 digests")
                }
                _ => None,
            };
            if let Some(why) = missing {
                self.skip(&set.name.clone(), why);
                continue;
            }
            let name = set.name.clone();
            self.group(&name, |r| r.data_set(&set));
        }
        self.manifest_errors();
    }

    /// Without credentials: 401 `UNAUTHORIZED` with a challenge (Basic
    /// naming a realm, or Bearer naming its realm and service) for the
    /// ping, a read and a write; with them, 200.
    fn challenge(&mut self) -> R {
        let reads = [
            ("GET", "/v2/".to_string()),
            ("GET", self.v2(&self.repo, "tags/list")),
            ("POST", self.v2(&self.repo, "blobs/uploads/")),
        ];
        for (method, t) in reads {
            let resp = send(
                &self.addr,
                &Request::new(method, t.clone()).body(Body::Sized(&[])),
            )?;
            if resp.status != 401 {
                return Err(format!(
                    "{method} {t} without credentials: {}, expected 401",
                    resp.describe()
                ));
            }
            let challenge = resp.header("www-authenticate").unwrap_or_default();
            let lower = challenge.to_ascii_lowercase();
            let ok = (lower.starts_with("basic ") && lower.contains("realm="))
                || (lower.starts_with("bearer ")
                    && lower.contains("realm=")
                    && lower.contains("service="));
            if !ok {
                return Err(format!(
                    "{method} {t}: 401 with WWW-Authenticate {challenge:?}, expected Basic realm=… or Bearer realm=…,service=…"
                ));
            }
            self.check_error(
                &resp,
                &["UNAUTHORIZED"],
                &format!("{method} {t} without credentials"),
            )?;
        }
        self.call(Request::new("GET", "/v2/"), &[200]).map(|_| ())
    }

    fn empty_tag_list(&mut self) -> R {
        let t = self.v2(&self.repo, "tags/list");
        let resp = self.call(Request::new("GET", t), &[200, 404])?;
        if resp.status == 404 {
            return self.check_error(&resp, &["NAME_UNKNOWN"], "tag list of a fresh repository");
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("tag list: not JSON ({e}): {}", resp.describe()))?;
        match v["tags"].as_array() {
            Some(a) if a.is_empty() => Ok(()),
            None if v["tags"].is_null() => Ok(()),
            _ => Err(format!("tag list of a fresh repository: {v}")),
        }
    }

    // ---- data sets (TestPush, TestList, TestHead, TestPull, TestReferrers, TestDelete) ----

    fn data_set(&mut self, set: &DataSet) {
        let repo = self.repo.clone();
        let mut pushed_tags = Vec::new();
        // Sparse manifests the registry refused (as the spec allows).
        let mut refused = BTreeSet::new();
        self.group("push", |r| {
            r.case("blobs", |r| {
                let mut errs = Vec::new();
                for (dig, bytes) in &set.blobs {
                    if let Err(e) = r.push_blob_any(&repo, dig, bytes) {
                        errs.push(e);
                    }
                }
                join(errs)
            });
            for (i, m) in set.manifests.iter().enumerate() {
                let tags: Vec<String> = if set.tag_param {
                    set.tags
                        .iter()
                        .filter(|(_, d)| **d == m.digest)
                        .map(|(t, _)| t.clone())
                        .collect()
                } else {
                    vec![]
                };
                let expect = if set.bad_digest {
                    PutExpect::DigestInvalid
                } else if set.sparse.contains(&m.digest) {
                    PutExpect::StoredOrBlobUnknown
                } else {
                    PutExpect::Stored
                };
                let mut stored = false;
                let ok = r.case(&format!("manifest {i} by digest"), |r| {
                    stored = r.put_manifest(&repo, &m.digest, m, expect, &tags)?;
                    Ok(())
                });
                if ok && stored {
                    pushed_tags.extend(tags);
                } else if ok && !set.bad_digest {
                    refused.insert(m.digest.clone());
                }
            }
            for (tag, dig) in &set.tags {
                if set.tag_param {
                    continue;
                }
                let m = set.manifests.iter().find(|m| m.digest == *dig).unwrap();
                // A manifest refused by digest is refused by tag too.
                let expect = if refused.contains(dig) {
                    PutExpect::BlobUnknown
                } else {
                    PutExpect::Stored
                };
                let mut stored = false;
                let ok = r.case(&format!("tag {tag}"), |r| {
                    stored = r.put_manifest(&repo, tag, m, expect, &[])?;
                    Ok(())
                });
                if ok && stored {
                    pushed_tags.push(tag.clone());
                }
            }
        });
        let listed: BTreeSet<String> = set
            .tags
            .iter()
            .filter(|(_, d)| !refused.contains(*d))
            .map(|(t, _)| t.clone())
            .collect();
        if !listed.is_empty() {
            self.case("tag-list", |r| r.tag_list(&repo, listed.clone()));
        }
        if !set.bad_digest {
            for verb in ["head", "pull"] {
                self.group(verb, |r| {
                    for (tag, dig) in &set.tags {
                        if refused.contains(dig) {
                            continue;
                        }
                        let m = set.manifests.iter().find(|m| m.digest == *dig).unwrap();
                        r.case(&format!("tag {tag}"), |r| {
                            r.read_manifest(verb, &repo, tag, m)
                        });
                    }
                    for (i, m) in set.manifests.iter().enumerate() {
                        if refused.contains(&m.digest) {
                            continue;
                        }
                        r.case(&format!("manifest {i} by digest"), |r| {
                            r.read_manifest(verb, &repo, &m.digest, m)
                        });
                    }
                    r.case("blobs", |r| {
                        let mut errs = Vec::new();
                        for (dig, bytes) in &set.blobs {
                            let res = if verb == "head" {
                                r.head_blob(&repo, dig, bytes)
                            } else {
                                r.get_blob(&repo, dig, bytes)
                            };
                            if let Err(e) = res {
                                errs.push(e);
                            }
                        }
                        join(errs)
                    });
                });
            }
        }
        if !set.referrers.is_empty() {
            if self.caps.referrers {
                self.group("referrers", |r| {
                    for (i, (subject, goals)) in set.referrers.iter().enumerate() {
                        r.case(&format!("subject {i}"), |r| {
                            r.check_referrers(subject, goals)
                        });
                    }
                });
            } else {
                self.skip("referrers", "no referrers API");
            }
        }
        self.group("delete", |r| {
            for tag in &pushed_tags {
                let dig = &set.tags[tag];
                if r.caps.tag_delete {
                    r.case(&format!("tag {tag}"), |r| {
                        let t = r.v2(&repo, &format!("manifests/{tag}"));
                        r.call(Request::new("DELETE", t.clone()), &[202])?;
                        r.call(Request::new("HEAD", t), &[404])?;
                        // The manifest stays.
                        let t = r.v2(&repo, &format!("manifests/{dig}"));
                        r.call(Request::new("HEAD", t), &[200]).map(|_| ())
                    });
                } else {
                    r.skip(&format!("tag {tag}"), "no tag delete");
                }
            }
            for (i, m) in set.manifests.iter().enumerate().rev() {
                r.case(&format!("manifest {i}"), |r| {
                    let t = r.v2(&repo, &format!("manifests/{}", m.digest));
                    // 404: never stored (a bad digest) or gone with its index.
                    r.call(Request::new("DELETE", t.clone()), &[202, 404])?;
                    r.call(Request::new("HEAD", t), &[404]).map(|_| ())
                });
            }
            r.case("blobs", |r| {
                let mut errs = Vec::new();
                for dig in set.blobs.keys() {
                    if let Err(e) = r.delete_blob(&repo, dig) {
                        errs.push(e);
                    }
                }
                join(errs)
            });
        });
    }

    /// PUT a manifest at `reference` (a chunked body, as the suite's Go
    /// client sends it): 201, `Location` that gives it back,
    /// `Docker-Content-Digest`, `OCI-Subject` when it has a subject, `OCI-Tag`
    /// for `?tag=`s; or the refusal `expect` allows. True if it was stored.
    fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        m: &Manifest,
        expect: PutExpect,
        tags: &[String],
    ) -> Result<bool, String> {
        let mut t = self.v2(repo, &format!("manifests/{reference}"));
        for tag in tags {
            t = with_param(&t, "tag", tag);
        }
        let want: &[u16] = match expect {
            PutExpect::Stored => &[201],
            PutExpect::DigestInvalid | PutExpect::BlobUnknown => &[400, 404],
            PutExpect::StoredOrBlobUnknown => &[201, 400, 404],
        };
        let resp = self.call(
            Request::new("PUT", t.clone())
                .header("Content-Type", &m.media_type)
                .body(Body::Chunked(&m.bytes)),
            want,
        )?;
        if expect == PutExpect::DigestInvalid {
            expect_status(&resp, 400, &t)?;
            self.check_error(
                &resp,
                &["DIGEST_INVALID"],
                "PUT of a manifest whose digest is not its content's",
            )?;
            return Ok(false);
        }
        if resp.status != 201 {
            // Spec, "Push": a registry MAY refuse a manifest naming a blob
            // or manifest it does not have, with MANIFEST_BLOB_UNKNOWN.
            self.check_error(
                &resp,
                &["MANIFEST_BLOB_UNKNOWN"],
                "PUT of a manifest naming what was never pushed",
            )?;
            self.note(format!("PUT {t}: refused (MANIFEST_BLOB_UNKNOWN, allowed)"));
            return Ok(false);
        }
        self.check_digest_header(&resp, &m.digest, "manifest PUT")?;
        if let (Some(s), true) = (&m.subject, self.caps.subject_header) {
            expect_header(&resp, "oci-subject", s, "PUT of a manifest with a subject")?;
        }
        for tag in tags {
            if !resp.header_values("oci-tag").contains(tag) {
                return Err(format!(
                    "PUT ?tag={tag}: OCI-Tag {:?} does not name it",
                    resp.header_values("oci-tag")
                ));
            }
        }
        let loc = self.target_of(resp.header("location"), "manifest PUT")?;
        let got = self.call(
            Request::new("GET", loc.clone())
                .header("Accept", MT_INDEX)
                .header("Accept", MT_MANIFEST),
            &[200],
        )?;
        self.same_manifest(&got, m, &format!("GET {loc} (the Location of the PUT)"))?;
        Ok(true)
    }

    fn same_manifest(&self, got: &Response, m: &Manifest, what: &str) -> R {
        expect_header(got, "content-type", &m.media_type, what)?;
        expect_header(got, "content-length", &m.bytes.len().to_string(), what)?;
        if got.body != m.bytes {
            return Err(format!(
                "{what}: the body ({} bytes) is not the manifest pushed ({} bytes)",
                got.body.len(),
                m.bytes.len()
            ));
        }
        Ok(())
    }

    /// HEAD or GET of a manifest by tag or digest: 200, its media type,
    /// length, digest; the body (GET) or none (HEAD).
    pub(super) fn read_manifest(
        &mut self,
        verb: &str,
        repo: &str,
        reference: &str,
        m: &Manifest,
    ) -> R {
        let method = if verb == "head" { "HEAD" } else { "GET" };
        let t = self.v2(repo, &format!("manifests/{reference}"));
        let resp = self.call(
            Request::new(method, t.clone())
                .header("Accept", MT_INDEX)
                .header("Accept", MT_MANIFEST),
            &[200],
        )?;
        let what = format!("{method} {t}");
        if method == "HEAD" {
            expect_header(&resp, "content-type", &m.media_type, &what)?;
            expect_header(&resp, "content-length", &m.bytes.len().to_string(), &what)?;
            if !resp.body.is_empty() {
                return Err(format!("{what}: {} bytes of body", resp.body.len()));
            }
        } else {
            self.same_manifest(&resp, m, &what)?;
        }
        self.check_digest_header(&resp, &m.digest, &what)
    }

    /// Every tag is listed, in lexical order; `last` gives those after it;
    /// `n` pages (with `Link` or by `last`) to the same list; `n=0` is empty.
    fn tag_list(&mut self, repo: &str, want: BTreeSet<String>) -> R {
        let base = self.v2(repo, "tags/list");
        let mut all = self.tags_page(&base)?.0;
        for t in &want {
            if !all.contains(t) {
                return Err(format!("GET {base}: tag {t} missing from {all:?}"));
            }
        }
        let mut sorted = all.clone();
        sorted.sort();
        if sorted != all && self.caps.tags_sorted {
            return Err(format!("GET {base}: tags not in lexical order: {all:?}"));
        }
        all = sorted;
        if !self.caps.tag_paging {
            return Ok(());
        }
        if all.len() >= 2 {
            let end = all.len() / 2;
            let last = &all[end - 1];
            let t = with_param(&base, "last", last);
            let (after, _) = self.tags_page(&t)?;
            if after != all[end..] {
                return Err(format!("GET {t}: {after:?}, expected {:?}", &all[end..]));
            }
            // Page one at a time: Link when there is more (or `last`).
            let mut paged = Vec::new();
            let mut next = with_param(&base, "n", "1");
            for _ in 0..=all.len() {
                let (page, link) = self.tags_page(&next)?;
                if page.len() > 1 {
                    return Err(format!("GET {next}: {} tags, n was 1", page.len()));
                }
                if page.is_empty() && paged.len() < all.len() && link.is_none() {
                    return Err(format!(
                        "GET {next}: empty after {paged:?}, expected the rest of {all:?}"
                    ));
                }
                paged.extend(page.iter().cloned());
                match link {
                    Some(l) => next = l,
                    None if paged.len() < all.len() => {
                        let t = with_param(&base, "n", "1");
                        next = with_param(&t, "last", paged.last().unwrap());
                    }
                    None => break,
                }
            }
            if paged != all {
                return Err(format!("paging with n=1: {paged:?}, expected {all:?}"));
            }
        }
        {
            let t = with_param(&base, "n", "0");
            let (page, link) = self.tags_page(&t)?;
            if !page.is_empty() || link.is_some() {
                return Err(format!(
                    "GET {t}: {page:?} (Link {link:?}), expected an empty list and no Link"
                ));
            }
        }
        Ok(())
    }

    /// One tag list page: its tags and the target its `Link` (rel="next") names.
    pub(super) fn tags_page(&mut self, t: &str) -> Result<(Vec<String>, Option<String>), String> {
        let resp = self.call(Request::new("GET", t), &[200])?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("GET {t}: not JSON ({e}): {}", resp.describe()))?;
        if v["name"].as_str() != Some(&self.repo) {
            return Err(format!(
                "GET {t}: name {}, expected {}",
                v["name"], self.repo
            ));
        }
        let tags = match &v["tags"] {
            Value::Null => vec![],
            Value::Array(a) => a
                .iter()
                .map(|t| t.as_str().unwrap_or_default().to_string())
                .collect(),
            other => return Err(format!("GET {t}: tags {other}")),
        };
        let link = match resp.header("link") {
            None => None,
            Some(l) => {
                // RFC 5988: <target>; rel="next"
                let ok = l.contains("rel=\"next\"") || l.contains("rel=next");
                let target = l
                    .strip_prefix('<')
                    .and_then(|s| s.split_once('>'))
                    .map(|(u, _)| u.to_string());
                match (ok, target) {
                    (true, Some(u)) => Some(self.target_of(Some(&u), "Link")?),
                    _ => return Err(format!("GET {t}: Link {l:?} is not <…>; rel=\"next\"")),
                }
            }
        };
        Ok((tags, link))
    }

    /// The referrers list of `subject`: each descriptor, media type, size,
    /// artifact type and annotations; the same filtered by each artifact
    /// type, with `OCI-Filters-Applied: artifactType` and nothing else.
    fn check_referrers(&mut self, subject: &str, goals: &[Value]) -> R {
        let list = self.referrers(subject)?;
        for g in goals {
            if !list.iter().any(|d| same_referrer(d, g)) {
                return Err(format!("referrers of {subject}: {g} missing from {list:?}"));
            }
        }
        let types: BTreeSet<&str> = goals
            .iter()
            .filter_map(|g| g["artifactType"].as_str())
            .collect();
        for at in types {
            let (list, applied) = self.referrers_filtered(subject, at)?;
            if !applied {
                return Err(format!(
                    "referrers of {subject}?artifactType={at}: no OCI-Filters-Applied: artifactType"
                ));
            }
            for g in goals.iter().filter(|g| g["artifactType"] == at) {
                if !list.iter().any(|d| same_referrer(d, g)) {
                    return Err(format!(
                        "referrers ?artifactType={at}: {g} missing from {list:?}"
                    ));
                }
            }
            if let Some(d) = list.iter().find(|d| d["artifactType"] != at) {
                return Err(format!(
                    "referrers ?artifactType={at}: {d} is of another type"
                ));
            }
        }
        Ok(())
    }

    fn referrers(&mut self, subject: &str) -> Result<Vec<Value>, String> {
        let t = self.v2(&self.repo, &format!("referrers/{subject}"));
        let resp = self.call(Request::new("GET", t.clone()), &[200])?;
        index_manifests(&resp, &t)
    }

    fn referrers_filtered(
        &mut self,
        subject: &str,
        at: &str,
    ) -> Result<(Vec<Value>, bool), String> {
        let t = with_param(
            &self.v2(&self.repo, &format!("referrers/{subject}")),
            "artifactType",
            at,
        );
        let resp = self.call(Request::new("GET", t.clone()), &[200])?;
        let applied = resp
            .header_values("oci-filters-applied")
            .iter()
            .any(|f| f == "artifactType");
        Ok((index_manifests(&resp, &t)?, applied))
    }

    // ---- manifest errors (TestManifestErrors) ----

    fn manifest_errors(&mut self) {
        let repo = self.repo.clone();
        self.group("missing-manifest", |r| {
            r.case("by-digest", |r| {
                let dig = Algo::Sha256.digest(&random_bytes(1024));
                let resp = r.call(
                    Request::new("GET", r.v2(&repo, &format!("manifests/{dig}")))
                        .header("Accept", MT_INDEX)
                        .header("Accept", MT_MANIFEST),
                    &[404],
                )?;
                r.check_error(&resp, &["MANIFEST_UNKNOWN"], "GET of a missing manifest")
            });
            r.case("by-tag", |r| {
                let tag = format!("missing-{}", &random_text()[..20]);
                let resp = r.call(
                    Request::new("GET", r.v2(&repo, &format!("manifests/{tag}")))
                        .header("Accept", MT_INDEX)
                        .header("Accept", MT_MANIFEST),
                    &[404],
                )?;
                r.check_error(&resp, &["MANIFEST_UNKNOWN"], "GET of a missing tag")
            });
        });
        self.group("invalid-digest-format", |r| {
            let mut set = DataSet::new("invalid-manifest-digest");
            set.gen_manifest_full(&Gen {
                layer_count: 1,
                ..Gen::default()
            });
            let m = set.manifests[0].clone();
            let setup = r.case("blobs", |r| {
                let mut errs = Vec::new();
                for (dig, bytes) in &set.blobs {
                    if let Err(e) = r.push_blob_any(&repo, dig, bytes) {
                        errs.push(e);
                    }
                }
                join(errs)
            });
            if !r.caps.bad_reference_refused {
                r.skip("manifest-put", "sha256:baddigeststring is taken as a tag");
                r.skip("manifest-get", "sha256:baddigeststring is taken as a tag");
            } else if setup {
                r.case("manifest-put", |r| {
                    let resp = r.call(
                        Request::new("PUT", r.v2(&repo, "manifests/sha256:baddigeststring"))
                            .header("Content-Type", &m.media_type)
                            .body(Body::Chunked(&m.bytes)),
                        &[400],
                    )?;
                    r.check_error(&resp, &[], "PUT to sha256:baddigeststring")
                });
                r.case("manifest-get", |r| {
                    let resp = r.call(
                        Request::new("GET", r.v2(&repo, "manifests/sha256:baddigeststring"))
                            .header("Accept", MT_INDEX)
                            .header("Accept", MT_MANIFEST),
                        &[400, 404],
                    )?;
                    r.check_error(&resp, &[], "GET of sha256:baddigeststring")
                });
            }
            r.case("cleanup", |r| {
                let mut errs = Vec::new();
                for dig in set.blobs.keys() {
                    if let Err(e) = r.delete_blob(&repo, dig) {
                        errs.push(e);
                    }
                }
                join(errs)
            });
        });
    }
}

/// What a manifest PUT must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PutExpect {
    /// 201.
    Stored,
    /// 400 `DIGEST_INVALID`: its bytes are not of its digest.
    DigestInvalid,
    /// A refusal with `MANIFEST_BLOB_UNKNOWN` (the same manifest was
    /// refused by digest).
    BlobUnknown,
    /// It names what was never pushed: stored, or refused with
    /// `MANIFEST_BLOB_UNKNOWN`.
    StoredOrBlobUnknown,
}

fn expect_status(r: &Response, status: u16, t: &str) -> R {
    if r.status == status {
        Ok(())
    } else {
        Err(format!("{t}: expected {status}, got {}", r.describe()))
    }
}

/// A referrers answer: an OCI index (its media type in the header and the
/// body, schema version 2); its descriptors.
fn index_manifests(resp: &Response, t: &str) -> Result<Vec<Value>, String> {
    expect_header(resp, "content-type", MT_INDEX, &format!("GET {t}"))?;
    let v: Value =
        serde_json::from_slice(&resp.body).map_err(|e| format!("GET {t}: not JSON ({e})"))?;
    if v["mediaType"] != MT_INDEX || v["schemaVersion"] != 2 {
        return Err(format!(
            "GET {t}: not an OCI index (mediaType, schemaVersion): {v}"
        ));
    }
    v["manifests"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("GET {t}: no manifests list: {v}"))
}

fn same_referrer(got: &Value, want: &Value) -> bool {
    got["digest"] == want["digest"]
        && got["mediaType"] == want["mediaType"]
        && got["size"] == want["size"]
        && got["artifactType"] == want["artifactType"]
        && contains_all(&got["annotations"], &want["annotations"])
}
