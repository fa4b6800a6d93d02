//! The OCI distribution-spec conformance suite's cases
//! (github.com/opencontainers/distribution-spec, `conformance/run.go` and
//! `api.go`), ported to Rust: the suite needs Go ≥ 1.21 and its modules,
//! this machine has Debian's Go 1.19 and no Go module proxy. The same
//! requests, the same expected statuses and headers, run against a
//! registry on 127.0.0.1 with a set of capabilities ([`Caps`]); each case
//! is named as a path (`blobs sha256/chunked multi`, `index/pull/tag
//! index`) and ends as passed, failed (with the request, what was expected
//! and what came) or skipped (a capability the registry does not have).
//! Beyond the suite, as the spec asks: error bodies are
//! `{"errors":[{"code":…}]}` with the spec's codes, a cancelled upload
//! answers 404 after, a refused upload stores nothing, a chunk's 202
//! carries `Range`, a non-sha256 upload names its `digest-algorithm`, tag
//! lists are in lexical order and page with `n` and `Link`, a sparse
//! manifest is stored or refused with `MANIFEST_BLOB_UNKNOWN`, a 401 has
//! `UNAUTHORIZED` and a challenge (included with `#[path]`).
#![allow(dead_code)]
use std::collections::BTreeSet;

use serde_json::Value;

use crate::http1::{send, with_param, Body, Request, Response};
use crate::oci_testdata::*;

/// The smallest chunk the suite sends (its `chunkMin`).
const CHUNK_MIN: usize = 1024;

/// The error codes of the spec ("Error Codes").
const SPEC_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// What the registry under test implements beyond the spec's MUSTs. A
/// case needing a capability that is off is skipped, or where the spec
/// allows a fallback (a 202 instead of a 201), the fallback is accepted.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// `GET /v2/<name>/referrers/<digest>` with the `artifactType` filter
    /// and `OCI-Filters-Applied` (distribution-spec 1.1).
    pub referrers: bool,
    /// `OCI-Subject` answering the PUT of a manifest with a subject (1.1).
    pub subject_header: bool,
    /// `POST …/blobs/uploads/?digest=` with the blob as its body stores it
    /// (201); off: a 202 and a PUT are accepted.
    pub monolithic_post: bool,
    /// `DELETE /v2/<name>/manifests/<tag>` removes the tag (1.1).
    pub tag_delete: bool,
    /// `DELETE <upload location>` cancels an upload (204, then 404).
    pub upload_cancel: bool,
    /// Blobs and manifests with sha512 digests.
    pub sha512: bool,
    /// `PUT /v2/<name>/manifests/<digest>?tag=…` answered with `OCI-Tag`
    /// (1.1+dev).
    pub tag_param: bool,
    /// `Docker-Content-Digest` on every blob and manifest answer.
    pub digest_header: bool,
    /// Tag lists page: `n` (`n=0` an empty list), `last` (also alone),
    /// `Link` (distribution-spec 1.1).
    pub tag_paging: bool,
    /// Tag lists in lexical order (a MUST of the spec the suite does not check).
    pub tags_sorted: bool,
    /// A chunk at the wrong offset is refused with 416.
    pub chunk_order: bool,
    /// `sha256:baddigeststring` is refused as a manifest reference: a PUT
    /// with 400, a GET with 400 or 404.
    pub bad_reference_refused: bool,
}

impl Caps {
    /// Every capability on.
    pub fn all() -> Caps {
        Caps {
            referrers: true,
            subject_header: true,
            monolithic_post: true,
            tag_delete: true,
            upload_cancel: true,
            sha512: true,
            tag_param: true,
            digest_header: true,
            tag_paging: true,
            tags_sorted: true,
            chunk_order: true,
            bad_reference_refused: true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub outcome: Outcome,
    /// Fallbacks the spec allows, seen on the way.
    pub notes: Vec<String>,
}

type R = Result<(), String>;

/// Whether an upload's bytes are those of the digest it names: when not,
/// the upload must end in 400 `DIGEST_INVALID` and store nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Content {
    Matches,
    DoesNotMatch,
}

/// How a blob is uploaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upload {
    PostOnly,
    PostPut,
    Chunked { put_last: bool, out_of_order: bool },
    Stream,
}

/// The harness: a registry, two repositories, the capabilities, the results.
pub struct Runner {
    addr: String,
    repo: String,
    repo2: String,
    caps: Caps,
    path: Vec<String>,
    results: Vec<CaseResult>,
    notes: Vec<String>,
    chunk_min: usize,
    rotate: usize,
    /// User and password for a registry that asks for credentials (Basic,
    /// or given to a Bearer challenge's token realm).
    basic: Option<(String, String)>,
    /// The `Authorization` sent once a 401 asked for it.
    authorization: std::cell::RefCell<Option<String>>,
}

fn octet() -> (String, String) {
    ("Content-Type".into(), MT_OCTET.into())
}

impl Runner {
    pub fn new(addr: &str, caps: Caps) -> Runner {
        Runner {
            addr: addr.into(),
            repo: "conformance/repo1".into(),
            repo2: "conformance/repo2".into(),
            caps,
            path: Vec::new(),
            results: Vec::new(),
            notes: Vec::new(),
            chunk_min: CHUNK_MIN,
            rotate: 0,
            basic: None,
            authorization: Default::default(),
        }
    }

    /// Read and write this repository (`conformance/repo1` by default).
    pub fn with_repo(mut self, repo: &str) -> Runner {
        self.repo = repo.into();
        self
    }

    /// Answer a `401` with these credentials, as the suite's client does:
    /// a Basic challenge with them, a Bearer one with a token its realm
    /// gives for them; the challenge itself is checked by the `auth` case.
    pub fn with_credentials(mut self, user: &str, pass: &str) -> Runner {
        self.basic = Some((user.into(), pass.into()));
        self
    }

    pub fn results(&self) -> &[CaseResult] {
        &self.results
    }

    // ---- the case tree ----

    /// Run `f` as the case `name` under the current path; true if it passed.
    fn case(&mut self, name: &str, f: impl FnOnce(&mut Runner) -> R) -> bool {
        self.path.push(name.to_string());
        let full = self.path.join("/");
        let notes_before = std::mem::take(&mut self.notes);
        let r = f(self);
        let notes = std::mem::replace(&mut self.notes, notes_before);
        let passed = r.is_ok();
        self.results.push(CaseResult {
            name: full,
            outcome: match r {
                Ok(()) => Outcome::Pass,
                Err(e) => Outcome::Fail(e),
            },
            notes,
        });
        self.path.pop();
        passed
    }

    /// A group of cases (not a case itself).
    fn group(&mut self, name: &str, f: impl FnOnce(&mut Runner)) {
        self.path.push(name.to_string());
        f(self);
        self.path.pop();
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.path.push(name.to_string());
        self.results.push(CaseResult {
            name: self.path.join("/"),
            outcome: Outcome::Skip(why.into()),
            notes: vec![],
        });
        self.path.pop();
    }

    fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    // ---- HTTP ----

    /// Send `req`; its status must be one of `want`.
    fn call(&self, req: Request, want: &[u16]) -> Result<Response, String> {
        let line = format!("{} {}", req.method, req.target);
        let mut req = req;
        if let Some(a) = self.authorization.borrow().as_ref() {
            req.headers.push(("Authorization".into(), a.clone()));
        }
        let mut resp = send(&self.addr, &req)?;
        if let (401, Some(_)) = (resp.status, &self.basic) {
            let challenge = resp.header("www-authenticate").unwrap_or_default();
            let a = self
                .answer_challenge(challenge)
                .map_err(|e| format!("{line}: 401: {e}"))?;
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            req.headers.push(("Authorization".into(), a.clone()));
            *self.authorization.borrow_mut() = Some(a);
            resp = send(&self.addr, &req)?;
        }
        // A short body is a broken answer where the body counts; an error
        // status is judged by its status (as the suite's Go client, which
        // reads no body there: docker-registry 2.8 sends a 416 with the
        // blob's Content-Length and a short text).
        if let (Some((n, got)), true) = (resp.cut_short, resp.status < 300) {
            return Err(format!(
                "{line}: {} with Content-Length {n} and {got} bytes of body",
                resp.status
            ));
        }
        if !want.contains(&resp.status) {
            return Err(format!(
                "{line}: expected {}, got {}",
                statuses(want),
                resp.describe()
            ));
        }
        Ok(resp)
    }

    /// The `Authorization` that answers `challenge` (the suite's
    /// getAuthHeader): Basic with the credentials, or Bearer with the
    /// token its realm (plain HTTP here) gives for its service and scope,
    /// asked with the credentials.
    fn answer_challenge(&self, challenge: &str) -> Result<String, String> {
        use base64::Engine as _;
        let (user, pass) = self.basic.clone().unwrap_or_default();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!("challenge {challenge:?}: neither Basic nor Bearer"));
        }
        let params = challenge_params(params);
        let param = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let realm = param("realm").ok_or_else(|| format!("challenge {challenge:?}: no realm"))?;
        let rest = realm
            .strip_prefix("http://")
            .ok_or_else(|| format!("realm {realm}: only http:// realms are fetched here"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut t = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        if let Some(sv) = param("service") {
            t = with_param(&t, "service", &sv);
        }
        if let Some(sc) = param("scope") {
            t = with_param(&t, "scope", &sc);
        }
        let resp = send(
            host,
            &Request::new("GET", t.clone())
                .header("Accept", "application/json")
                .header("Authorization", &basic),
        )?;
        if resp.status != 200 {
            return Err(format!("token from {host}{t}: {}", resp.describe()));
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("token from {host}{t}: not JSON ({e})"))?;
        let token = v["access_token"]
            .as_str()
            .or(v["token"].as_str())
            .ok_or_else(|| format!("token from {host}{t}: no token in {v}"))?;
        Ok(format!("Bearer {token}"))
    }

    /// The request target a `Location` names (absolute on this registry, or a path).
    fn target_of(&self, loc: Option<&str>, what: &str) -> Result<String, String> {
        let loc = loc.ok_or_else(|| format!("{what}: no Location header"))?;
        for scheme in ["http://", "https://"] {
            if let Some(rest) = loc.strip_prefix(scheme) {
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let port = self.addr.rsplit(':').next().unwrap();
                if host != self.addr && host != format!("localhost:{port}") {
                    return Err(format!("{what}: Location {loc} is not on this registry"));
                }
                return Ok(path.to_string());
            }
        }
        if loc.starts_with('/') {
            Ok(loc.to_string())
        } else {
            Err(format!(
                "{what}: Location {loc:?} is neither absolute nor a path"
            ))
        }
    }

    fn v2(&self, repo: &str, rest: &str) -> String {
        format!("/v2/{repo}/{rest}")
    }

    // ---- checks ----

    /// A `Docker-Content-Digest`, if any (required with the capability), names `dig`.
    fn check_digest_header(&self, resp: &Response, dig: &str, what: &str) -> R {
        match resp.header("docker-content-digest") {
            Some(h) if h != dig => {
                Err(format!("{what}: Docker-Content-Digest {h}, expected {dig}"))
            }
            None if self.caps.digest_header => {
                Err(format!("{what}: no Docker-Content-Digest header"))
            }
            _ => Ok(()),
        }
    }

    /// The `GET` of an upload's final `Location` gives the blob.
    fn verify_location(&self, resp: &Response, bytes: &[u8], what: &str) -> R {
        let t = self.target_of(resp.header("location"), what)?;
        let got = self.call(Request::new("GET", t.clone()), &[200])?;
        if got.body != bytes {
            return Err(format!(
                "GET {t} (the Location of {what}): the body is not the blob ({} bytes, expected {})",
                got.body.len(),
                bytes.len()
            ));
        }
        Ok(())
    }

    // ---- blob reads and deletes ----

    fn head_blob(&self, repo: &str, dig: &str, bytes: &[u8]) -> R {
        let r = self.call(
            Request::new("HEAD", self.v2(repo, &format!("blobs/{dig}"))),
            &[200],
        )?;
        if !r.body.is_empty() {
            return Err(format!(
                "HEAD of blob {dig}: {} bytes of body",
                r.body.len()
            ));
        }
        expect_header(
            &r,
            "content-length",
            &bytes.len().to_string(),
            "HEAD of a blob",
        )?;
        self.check_digest_header(&r, dig, "HEAD of a blob")
    }

    fn get_blob(&self, repo: &str, dig: &str, bytes: &[u8]) -> R {
        let r = self.call(
            Request::new("GET", self.v2(repo, &format!("blobs/{dig}"))),
            &[200],
        )?;
        if r.body != bytes {
            return Err(format!(
                "GET of blob {dig}: the body is not the blob ({} bytes, expected {})",
                r.body.len(),
                bytes.len()
            ));
        }
        expect_header(
            &r,
            "content-length",
            &bytes.len().to_string(),
            "GET of a blob",
        )?;
        self.check_digest_header(&r, dig, "GET of a blob")
    }

    /// DELETE (202; 404 is allowed: already gone), then HEAD is 404.
    fn delete_blob(&self, repo: &str, dig: &str) -> R {
        let t = self.v2(repo, &format!("blobs/{dig}"));
        self.call(Request::new("DELETE", t.clone()), &[202, 404])?;
        self.call(Request::new("HEAD", t), &[404]).map(|_| ())
    }

    /// A 4xx error body: `{"errors":[{"code": one of `codes` (any of the
    /// spec's when empty), "message": a string if present}]}`.
    fn check_error(&self, r: &Response, codes: &[&str], what: &str) -> R {
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("{what}: the error body is not JSON ({e}): {}", r.describe()))?;
        let errs = v["errors"]
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("{what}: no \"errors\" list in {}", r.describe()))?;
        let mut found = Vec::new();
        for e in errs {
            let c = e["code"]
                .as_str()
                .ok_or_else(|| format!("{what}: an error without a code: {e}"))?;
            if !SPEC_CODES.contains(&c) {
                return Err(format!("{what}: error code {c} is not one of the spec's"));
            }
            if !e["message"].is_null() && !e["message"].is_string() {
                return Err(format!(
                    "{what}: an error message that is not a string: {e}"
                ));
            }
            found.push(c.to_string());
        }
        if !codes.is_empty() && !found.iter().any(|c| codes.contains(&c.as_str())) {
            return Err(format!(
                "{what}: {} with codes {found:?}, expected {codes:?}",
                r.status
            ));
        }
        Ok(())
    }
}

/// `k=v, k="v, with commas"` (RFC 9110's auth-params).
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((k, after)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let (v, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"').unwrap_or(q.len());
                (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        out.push((k, v));
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

/// Many checks' errors as one, or Ok.
fn join(errs: Vec<String>) -> R {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n      "))
    }
}

fn statuses(s: &[u16]) -> String {
    s.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn expect_header(r: &Response, k: &str, v: &str, what: &str) -> R {
    match r.header(k) {
        Some(h) if h == v => Ok(()),
        other => Err(format!("{what}: {k} {other:?}, expected {v:?}")),
    }
}

/// `want` ⊆ `got` for annotation maps.
fn contains_all(got: &Value, want: &Value) -> bool {
    match want.as_object() {
        None => true,
        Some(w) => w.iter().all(|(k, v)| got.get(k) == Some(v)),
    }
}

#[path = "oci_blob_cases.rs"]
mod blob_cases;
#[path = "oci_cases.rs"]
mod cases;
#[path = "oci_read_only.rs"]
mod read_only;
#[path = "oci_uploads.rs"]
mod uploads;

/// The summary: each case, its outcome, and the totals.
pub fn report(results: &[CaseResult]) -> String {
    let mut s = String::new();
    let (mut p, mut f, mut k) = (0, 0, 0);
    for r in results {
        let (mark, detail) = match &r.outcome {
            Outcome::Pass => {
                p += 1;
                ("pass", String::new())
            }
            Outcome::Fail(e) => {
                f += 1;
                ("FAIL", format!("\n      {e}"))
            }
            Outcome::Skip(w) => {
                k += 1;
                ("skip", format!(" ({w})"))
            }
        };
        s.push_str(&format!("  {mark} {}{detail}\n", r.name));
        for n in &r.notes {
            s.push_str(&format!("      note: {n}\n"));
        }
    }
    s.push_str(&format!("{p} passed, {f} failed, {k} skipped\n"));
    s
}

/// Every failed case, with why. A registry's capabilities ([`Caps`])
/// turn off what it does not implement, so every case that runs must pass.
pub fn failures(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Fail(e) => Some(format!("{} failed: {e}", r.name)),
            _ => None,
        })
        .collect()
}

#[test]
fn challenges_are_parsed_with_quoted_commas() {
    let p = challenge_params(
        r#"realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
    );
    assert_eq!(
        p,
        [
            ("realm".to_string(), "http://127.0.0.1:1/token".to_string()),
            ("service".to_string(), "reg".to_string()),
            ("scope".to_string(), "repository:a/b:pull,push".to_string()),
        ]
    );
    assert_eq!(
        challenge_params("realm=x, a=b")[1],
        ("a".to_string(), "b".to_string())
    );
}

#[test]
fn every_failure_is_reported_and_skips_are_not() {
    let res = |name: &str, outcome: Outcome| CaseResult {
        name: name.into(),
        outcome,
        notes: vec![],
    };
    let results = vec![
        res("a", Outcome::Pass),
        res("b", Outcome::Fail("broken".into())),
        res("c", Outcome::Skip("off".into())),
    ];
    assert_eq!(failures(&results), ["b failed: broken"]);
    assert!(failures(&results[..1]).is_empty());
}
