//! `POST /images/create` (pull, or import with `fromSrc`), `POST
//! /images/{name}/push`, `POST /auth` and `GET /images/search`, with
//! dockerd's JSON progress lines (see `progress.rs`). Credentials come
//! with each request in `X-Registry-Auth` (base64url JSON of an
//! AuthConfig), as the docker CLI sends what its login saved; without
//! them berth's saved credentials apply.
use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::Engine as _;
use engine::distribution::{Credential, Event, LayerStatus, Platform, PullOptions, PushOptions};
use engine::Engine;
use model::Reference;
use serde_json::{json, Value};

use crate::progress::{layer_progress, layer_status, Lines};
use crate::{ApiError, AppState};

/// A query's pairs, repeated keys kept (`changes`, `names`, `t`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(q: Option<String>) -> Params {
        Params(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of `key`, if not empty.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// dockerd's booleans: `1`, `true`, `True`.
    pub(crate) fn flag(&self, key: &str) -> bool {
        crate::containers::truthy(&self.get(key).map(str::to_string))
    }
}

/// The credential of an `X-Registry-Auth` (or `X-Registry-Config`
/// entry) document: user and password, or `auth` (base64 `user:pass`).
/// Garbage is no credential, as dockerd takes it.
pub(crate) fn credential_of(doc: &Value) -> Option<Credential> {
    let user = doc["username"].as_str().unwrap_or_default();
    let pass = doc["password"].as_str().unwrap_or_default();
    if !user.is_empty() && !pass.is_empty() {
        return Some(Credential {
            username: user.to_string(),
            password: pass.to_string(),
        });
    }
    let auth = doc["auth"].as_str().filter(|a| !a.is_empty())?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let (u, p) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some(Credential {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// A header's base64url (or standard base64) JSON.
pub(crate) fn header_json(headers: &HeaderMap, name: &str) -> Option<Value> {
    let raw = headers.get(name)?.to_str().ok()?.trim();
    let bytes = [
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
    ]
    .iter()
    .find_map(|e| e.decode(raw).ok())?;
    serde_json::from_slice(&bytes).ok()
}

/// dockerd's words for a bad reference: `invalid reference format: …`.
pub(crate) fn reference_error(e: &model::ParseError) -> String {
    let m = e.to_string();
    if m.starts_with("invalid reference format") {
        m
    } else {
        format!("invalid reference format: {m}")
    }
}

pub(crate) fn parse_reference(s: &str) -> Result<Reference, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request(reference_error(&e)))
}

/// `POST /images/create`: pull `fromImage[:tag]`, or import `fromSrc`
/// (`-`: the body; else a URL) as `repo[:tag]`.
pub(crate) async fn create(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Params::parse(q);
    if let Some(image) = p.get("fromImage").map(str::to_string) {
        let cred = header_json(&headers, "X-Registry-Auth").and_then(|d| credential_of(&d));
        let platform = p
            .get("platform")
            .map(|s| Platform::parse(s).map_err(ApiError::bad_request))
            .transpose()?;
        let targets = pull_targets(&image, p.get("tag"))?;
        let all_tags = targets.is_none();
        let image_ref = parse_reference(&image)?;
        return st
            .lines("application/json", move |e, lines| {
                let opts = PullOptions {
                    platform,
                    cancel: lines.cancel(),
                    ..Default::default()
                };
                let refs = match targets {
                    Some(r) => vec![r],
                    None => match e.list_tags(&image_ref) {
                        Ok(tags) => tags
                            .iter()
                            .filter_map(|t| image_ref.with_tag(t).ok())
                            .collect(),
                        Err(err) => return lines.fail(err.into()),
                    },
                };
                let mut any_new = false;
                for r in &refs {
                    match pull_one(e, r, &opts, cred.clone(), lines, !all_tags) {
                        Ok(new) => any_new |= new,
                        Err(err) => return lines.fail(err),
                    }
                }
                if all_tags {
                    let verb = if any_new {
                        "Downloaded newer image for"
                    } else {
                        "Image is up to date for"
                    };
                    lines.send(
                        &json!({"status": format!("Status: {verb} {}", image_ref.familiar_name())}),
                    );
                }
            })
            .await;
    }
    let Some(src) = p.get("fromSrc").map(str::to_string) else {
        return Err(ApiError::bad_request(
            "Bad parameters: give fromImage (pull) or fromSrc (import)",
        ));
    };
    let opts = import_options(&p)?;
    let reader = (src == "-").then(|| crate::body::reader(body));
    st.lines("application/json", move |e, lines| {
        let record = match reader {
            Some(mut r) => {
                let imported = e.import_image(std::io::BufReader::new(&mut r), &opts);
                r.drain();
                imported
            }
            None => e.import_image_from_url(&src, &opts),
        };
        match record {
            Ok(r) => {
                lines.send(&json!({"status": r.id.to_string()}));
            }
            Err(err) => lines.fail(err.into()),
        }
    })
    .await
}

/// `repo`, `tag`, `message`, `changes` and `platform` of an import.
fn import_options(p: &Params) -> Result<engine::image::ImportOptions, ApiError> {
    let reference = match p.get("repo") {
        Some(repo) => {
            let full = match p.get("tag") {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            Some(parse_reference(&full)?)
        }
        None => None,
    };
    let mut changes = Vec::new();
    for c in p.all("changes").iter().filter(|c| !c.trim().is_empty()) {
        changes.push(
            engine::image::parse_change(c).map_err(|e| ApiError::bad_request(e.to_string()))?,
        );
    }
    let platform = p
        .get("platform")
        .map(|s| Platform::parse(s).map_err(ApiError::bad_request))
        .transpose()?
        .map(|p| (p.os, p.architecture, p.variant));
    Ok(engine::image::ImportOptions {
        reference,
        changes,
        message: p.get("message").map(str::to_string),
        platform,
    })
}

/// What to pull: one reference, or `None` for every tag (no tag given
/// and none in `fromImage`, as `docker pull -a` asks).
fn pull_targets(image: &str, tag: Option<&str>) -> Result<Option<Reference>, ApiError> {
    match tag {
        Some(t) if t.starts_with("sha256:") => parse_reference(&format!("{image}@{t}")).map(Some),
        Some(t) => {
            let r = parse_reference(image)?;
            r.with_tag(t)
                .map(Some)
                .map_err(|_| ApiError::bad_request("invalid tag format"))
        }
        None => {
            let last = image.rsplit('/').next().unwrap_or(image);
            if image.contains('@') || last.contains(':') {
                parse_reference(image).map(Some)
            } else {
                Ok(None)
            }
        }
    }
}

/// How a pull's events become dockerd's lines.
#[derive(Default)]
struct PullView {
    /// The layers of the image and their sizes, as `Resolved` listed them.
    layers: Vec<(String, u64)>,
    /// Layers with a `Downloading` line sent.
    counted: HashSet<String>,
    /// Layers in the store: their `Already exists` lines wait until the
    /// pull is known to fetch something (dockerd says nothing of the
    /// layers of an image it already has).
    present: Vec<String>,
    /// The download has begun (`Pulling fs layer` lines sent).
    begun: bool,
}

impl PullView {
    fn begin(&mut self, lines: &Lines) {
        if self.begun {
            return;
        }
        self.begun = true;
        for id in &self.present {
            lines.send(&layer_status("Already exists", id));
        }
        let present: HashSet<&String> = self.present.iter().collect();
        let mut seen = HashSet::new();
        for (id, _) in self.layers.iter().filter(|(l, _)| !present.contains(l)) {
            if seen.insert(id) {
                lines.send(&layer_status("Pulling fs layer", id));
            }
        }
    }

    fn event(&mut self, lines: &Lines, ev: Event) {
        match ev {
            Event::Resolved {
                reference,
                repository,
                layers,
            } => {
                lines.send(
                    &json!({"status": format!("Pulling from {repository}"), "id": reference}),
                );
                self.layers = layers;
            }
            Event::Layer {
                id,
                status: LayerStatus::AlreadyExists,
            } => self.present.push(id),
            Event::Layer { id, status } => {
                self.begin(lines);
                match status {
                    LayerStatus::Progress(done, total) => {
                        self.counted.insert(id.clone());
                        lines.send(&layer_progress("Downloading", &id, done, total));
                    }
                    LayerStatus::Resuming(n) => {
                        lines.send(&layer_status(&format!("Resuming from byte {n}"), &id));
                    }
                    LayerStatus::Retrying(why) => {
                        lines.send(&layer_status(&format!("Retrying ({why})"), &id));
                    }
                    LayerStatus::Complete => {
                        // A small layer comes in one go: its one count.
                        if !self.counted.contains(&id) {
                            if let Some((_, size)) = self.layers.iter().find(|(l, _)| *l == id) {
                                lines.send(&layer_progress("Downloading", &id, *size, *size));
                            }
                        }
                        lines.send(&layer_status("Verifying Checksum", &id));
                        lines.send(&layer_status("Download complete", &id));
                        lines.send(&layer_status("Pull complete", &id));
                    }
                    _ => {}
                }
            }
            Event::PushStarted { .. } | Event::MirrorFailed { .. } => {}
        }
    }
}

/// Pull `r`, its progress to `lines`; whether the image is new. With
/// `status`, the closing `Status:` line too.
fn pull_one(
    e: &Engine,
    r: &Reference,
    opts: &PullOptions,
    cred: Option<Credential>,
    lines: &Lines,
    status: bool,
) -> Result<bool, ApiError> {
    let view = Mutex::new(PullView::default());
    let progress = |ev: Event| {
        view.lock()
            .unwrap_or_else(|p| p.into_inner())
            .event(lines, ev)
    };
    let before: HashSet<String> = e
        .image_records()
        .unwrap_or_default()
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    let out = e
        .pull_as(r, opts, cred, &progress)
        .map_err(registry_error)?;
    let mut v = view.into_inner().unwrap_or_else(|p| p.into_inner());
    // dockerd names the layers of an image it did not have, only.
    if !before.contains(&out.id.to_string()) {
        v.begin(lines);
    }
    lines.send(&json!({"status": format!("Digest: {}", out.digest)}));
    if status {
        let verb = if out.new {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        lines.send(&json!({"status": format!("Status: {verb} {}", r.familiar())}));
    }
    Ok(out.new)
}

/// A failed pull or push. A registry's refusal is dockerd's 500, not a
/// 401: on a 401 the docker CLI offers an interactive login (and without
/// a terminal, CLI 28 waits for it).
fn registry_error(e: engine::EngineError) -> ApiError {
    if e.kind() == engine::ErrorKind::Unauthorized {
        return ApiError::internal(e.to_string());
    }
    e.into()
}

/// `POST /images/{name}/push?tag=`: the tag, or every local tag of the
/// repository.
pub(crate) async fn push(
    st: AppState,
    name: String,
    tag: Option<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(auth) = header_json(&headers, "X-Registry-Auth")
        .or_else(|| headers.contains_key("X-Registry-Auth").then(|| json!({})))
    else {
        // dockerd wants the header (or an AuthConfig body of old clients).
        return Err(ApiError::bad_request(
            "Bad parameters and missing X-Registry-Auth: EOF",
        ));
    };
    let cred = credential_of(&auth);
    let repo = parse_reference(&name)?;
    st.lines("application/json", move |e, lines| {
        lines.send(&json!({"status": format!("The push refers to repository [{}]", repo.name())}));
        let refs: Vec<Reference> = match tag.filter(|t| !t.is_empty()) {
            Some(t) => match repo.with_tag(&t) {
                Ok(r) => vec![r],
                Err(_) => return lines.fail(ApiError::bad_request("invalid tag format")),
            },
            // A name with its tag: that one; else every local tag.
            None if name.rsplit('/').next().is_some_and(|l| l.contains(':')) => {
                vec![repo.clone()]
            }
            None => local_tags(e, &repo),
        };
        if refs.is_empty() || e.image(&refs[0].to_string()).is_err() {
            lines.fail(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "An image does not exist locally with the tag: {}",
                    repo.familiar_name()
                ),
            ));
            return;
        }
        for r in &refs {
            if let Err(err) = push_one(e, r, cred.clone(), lines) {
                return lines.fail(err);
            }
        }
    })
    .await
}

/// The local tags of `repo`'s repository.
fn local_tags(e: &Engine, repo: &Reference) -> Vec<Reference> {
    let mut out: Vec<Reference> = e
        .image_records()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .filter(|t| t.name() == repo.name())
        .collect();
    out.sort_by_key(|r| r.to_string());
    out.dedup();
    out
}

fn push_one(
    e: &Engine,
    r: &Reference,
    cred: Option<Credential>,
    lines: &Lines,
) -> Result<(), ApiError> {
    let progress = |ev: Event| match ev {
        Event::Resolved { layers, .. } => {
            for (id, _) in layers {
                lines.send(&layer_status("Preparing", &id));
            }
        }
        Event::Layer { id, status } => {
            let line = match status {
                LayerStatus::AlreadyExists => layer_status("Layer already exists", &id),
                LayerStatus::Progress(done, total) => layer_progress("Pushing", &id, done, total),
                LayerStatus::Complete => layer_status("Pushed", &id),
                LayerStatus::Mounted(from) => layer_status(&format!("Mounted from {from}"), &id),
                LayerStatus::Retrying(why) => layer_status(&format!("Retrying ({why})"), &id),
                _ => return,
            };
            lines.send(&line);
        }
        _ => {}
    };
    let out = e
        .push_as(
            r,
            &PushOptions {
                cancel: lines.cancel(),
                ..Default::default()
            },
            cred,
            &progress,
        )
        .map_err(registry_error)?;
    let tag = r.tag().unwrap_or("latest");
    lines.send(&json!({"status": format!("{tag}: digest: {} size: {}", out.digest, out.size)}));
    lines.send(&json!({
        "progressDetail": {},
        "aux": {"Tag": tag, "Digest": out.digest.to_string(), "Size": out.size},
    }));
    Ok(())
}

/// `POST /auth`: check the credentials with the registry; the client
/// keeps them (nothing is saved here).
pub(crate) async fn auth(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    let host = doc["serveraddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("https://index.docker.io/v1/");
    let host = registry_host(host);
    let cred = credential_of(&doc).unwrap_or(Credential {
        username: String::new(),
        password: String::new(),
    });
    st.engine(move |e| {
        e.check_login(&host, cred).map_err(|err| {
            if err.kind() == engine::ErrorKind::Unauthorized {
                // dockerd's words (20.10 answers them with a 500, later
                // versions with this 401).
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    format!("login attempt to {host} failed: {err}"),
                )
            } else {
                err.into()
            }
        })?;
        Ok(Json(
            json!({"IdentityToken": "", "Status": "Login Succeeded"}),
        ))
    })
    .await
}

/// `https://host/v1/`, `host`: the registry's `host[:port]`.
fn registry_host(addr: &str) -> String {
    let a = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    let h = a.split('/').next().unwrap_or(a);
    match h {
        "index.docker.io" | "registry-1.docker.io" | "" => {
            model::reference::DEFAULT_REGISTRY.to_string()
        }
        h => h.to_string(),
    }
}

/// `GET /images/search`: not served.
pub(crate) async fn search() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "berth does not search registries: docker search is not supported (list a registry's tags with its API instead)",
    )
}
