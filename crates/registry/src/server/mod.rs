//! `berth registry serve`: an OCI distribution registry
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md>)
//! on axum, storing content under its own root ([`storage`]).
//!
//! Every request goes through [`dispatch`]: the path is parsed into a
//! [`Route`] (repository names checked against the spec's grammar before
//! anything touches the disk), the access it needs is built
//! ([`Access`]: pull for reads, push+pull for writes, delete, and pull on
//! the source repository of a cross-repository mount), [`authorize`] — the
//! one place that decides who may do what — is asked, then the handler of
//! [`blobs`], [`manifests`] or [`tags`] runs. Each request is logged as a
//! JSON line on stderr (time, method, path, status, bytes, duration,
//! user, remote address).
//!
//! Stopping (SIGINT, SIGTERM): stop accepting, let requests under way
//! finish for at most [`GRACE`], then exit. Nothing is half-written: a blob
//! becomes visible only by a rename after it was verified, so an
//! interrupted upload just stays in `uploads/`, removed on the next start.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::RegistryError;

/// Users, the access policy, Basic and token auth (the `/token` endpoint).
pub mod auth;
pub mod blobs;
pub mod errors;
/// `berth registry gc`, and the lock writes hold against it.
pub mod gc;
/// The accept loop: header timeout, connection cap, TLS handshakes.
pub mod listen;
mod local;
pub mod manifests;
/// The pull-through cache (`--proxy`).
pub mod proxy;
pub mod storage;
pub mod tags;
/// HTTPS (`--tls-cert`, `--tls-key`).
pub mod tls;
mod zerocopy;

use errors::{ApiError, Code};
use storage::{Name, Storage};

/// How long requests under way may run on once the server is told to stop.
pub const GRACE: Duration = Duration::from_secs(5);

/// `berth registry serve`'s options.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `host:port` to listen on (`127.0.0.1:5000`; port 0 picks one, and
    /// the startup line says which).
    pub addr: String,
    /// The registry's own root (`<berth root>/registry` by default).
    pub root: PathBuf,
    /// `--store`: serve berth's image store instead (pushes land in it
    /// unless `read_only`); `root` is then berth's state root.
    pub store: bool,
    /// Who may do what (`--htpasswd`, `--access`, `--anonymous-read`,
    /// `--token-auth`, `--token-realm`, `--token-service`).
    pub auth: auth::AuthOptions,
    /// `--tls-cert`: the certificate chain, PEM.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`: its private key, PEM.
    pub tls_key: Option<PathBuf>,
    /// `--proxy`: the upstream of a pull-through cache.
    pub proxy: Option<String>,
    /// `--proxy-ttl`: how long a cached tag is served before the upstream
    /// is asked again ([`proxy::DEFAULT_TTL`] when not given).
    pub proxy_ttl: Option<Duration>,
    /// berth's config dir (registries.toml, certs.d, credentials), for the
    /// connection to the upstream.
    pub config_dir: PathBuf,
    /// `--read-only`: every write answers 405 `UNSUPPORTED`.
    pub read_only: bool,
    /// `--delete`: allow DELETE of blobs and manifests (distribution's
    /// `storage.delete.enabled`); without it they answer 405 `UNSUPPORTED`.
    pub delete: bool,
    /// How long a client may take to send its request headers, and how
    /// many connections are served at once (`--header-timeout`,
    /// `--max-connections`, hidden flags).
    pub limits: listen::Limits,
}

/// What the server shares between requests.
pub struct AppState {
    /// The options it was started with.
    pub opts: ServeOptions,
    /// The files.
    pub storage: Storage,
    /// Uploads under way.
    pub(crate) uploads: blobs::Uploads,
    /// Who may do what.
    pub auth: auth::Authorizer,
    /// The upstream, in pull-through cache mode.
    pub proxy: Option<proxy::Proxy>,
}

/// What a request wants to reach, as docker's token scopes name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `repository:NAME`.
    Repository(String),
    /// `registry:catalog`.
    Catalog,
}

/// What a request wants to do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read.
    Pull,
    /// Write.
    Push,
    /// Delete.
    Delete,
    /// Everything (`*`, the catalog's scope).
    All,
}

impl Action {
    /// As a scope spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }
}

/// One resource and the actions a request needs on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Where.
    pub kind: Resource,
    /// What.
    pub actions: Vec<Action>,
}

impl std::fmt::Display for Access {
    /// The scope: `repository:NAME:pull,push`, `registry:catalog:*`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Resource::Repository(n) => write!(f, "repository:{n}:")?,
            Resource::Catalog => write!(f, "registry:catalog:")?,
        }
        let a: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        f.write_str(&a.join(","))
    }
}

/// The one decision on who may do what: `Ok(user)` (None: anonymous) or
/// the answer to send (401 with a challenge, 403).
///
/// A first check of Basic credentials costs a bcrypt hash (milliseconds
/// or more): it runs with the runtime told this thread blocks.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    access: &[Access],
) -> Result<Option<String>, Response> {
    let r = if state.auth.may_block(headers) {
        tokio::task::block_in_place(|| state.auth.authorize(headers, access))
    } else {
        state.auth.authorize(headers, access)
    };
    r.map_err(|d| ApiError::from(d).into_response())
}

/// The token endpoint (docker's token auth): GET with the query, or
/// OAuth2's POST with a form body.
async fn token(st: &AppState, req: Request) -> Response {
    let mut params = form_urlencoded_pairs(req.uri().query().unwrap_or(""));
    let (parts, body) = req.into_parts();
    match parts.method {
        Method::GET => {}
        Method::POST => match axum::body::to_bytes(body, 64 << 10).await {
            Ok(b) => params.extend(form_urlencoded_pairs(&String::from_utf8_lossy(&b))),
            Err(_) => {
                return ApiError::new(Code::Unsupported)
                    .msg("the token request's body is not a form of at most 64 KiB")
                    .status(StatusCode::BAD_REQUEST)
                    .into_response()
            }
        },
        _ => {
            return ApiError::new(Code::Unsupported)
                .msg("use GET or POST on the token endpoint")
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .into_response()
        }
    }
    let issued = tokio::task::block_in_place(|| st.auth.issue(&parts.headers, &params));
    match issued {
        Ok(t) => (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::Json(t),
        )
            .into_response(),
        Err(d) => ApiError::from(d).into_response(),
    }
}

/// In pull-through cache mode, fetch what a pull asks for and the cache
/// lacks (or a tag past its TTL) before the handler serves it.
async fn fill_cache(st: &Arc<AppState>, route: &Route, method: &Method) -> Result<(), ApiError> {
    if st.proxy.is_none() || !matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let (st2, route) = (
        st.clone(),
        match route {
            Route::Manifest(n, r) => (n.clone(), r.clone(), true),
            Route::Blob(n, d) => (n.clone(), d.clone(), false),
            _ => return Ok(()),
        },
    );
    tokio::task::spawn_blocking(move || {
        let Some(p) = &st2.proxy else { return Ok(()) };
        let (name, reference, is_manifest) = route;
        if is_manifest {
            p.manifest(&st2.storage, &name, &reference)
        } else {
            match reference.parse::<model::Digest>() {
                Ok(d) => p.blob(&st2.storage, &name, &d),
                // The handler answers DIGEST_INVALID (or, for a sha512
                // digest, which berth's client does not fetch, BLOB_UNKNOWN).
                Err(_) => Ok(()),
            }
        }
    })
    .await
    .map_err(|e| ApiError::internal("filling the cache", e))?
}

/// The user a request was authorized as, for the access log.
#[derive(Debug, Clone)]
struct User(Option<String>);

/// The endpoint a path names.
#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    /// `/v2/`.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(Name),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(Name, String),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(Name, String),
    /// `/v2/<name>/blobs/uploads/[<id>]`.
    Upload(Name, Option<String>),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(Name, String),
}

/// The route of a raw (undecoded) path: `Ok(None)` when it names no
/// endpoint; a name outside the grammar (`..`, `%2e`, an absolute path) is
/// `NAME_INVALID`.
pub(crate) fn parse_route(path: &str) -> Result<Option<Route>, ApiError> {
    let rest = match path.strip_prefix("/v2") {
        Some("") | Some("/") => return Ok(Some(Route::Base)),
        Some(r) => match r.strip_prefix('/') {
            Some(r) => r,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    let Some((before, last)) = rest.rsplit_once('/') else {
        return Ok(None);
    };
    let name = |n: &str| {
        Name::parse(n).ok_or_else(|| {
            ApiError::new(Code::NameInvalid)
                .msg(format!(
                    "invalid repository name {n:?}: path components of lowercase letters and digits, separated by '.', '_', '__' or '-' (see the distribution spec)"
                ))
                .detail(serde_json::json!({ "name": n }))
        })
    };
    let last_s = last.to_string();
    if let Some(n) = before.strip_suffix("/blobs/uploads") {
        let id = (!last.is_empty()).then_some(last_s);
        return Ok(Some(Route::Upload(name(n)?, id)));
    }
    if last.is_empty() {
        return Ok(None);
    }
    if let Some(n) = before.strip_suffix("/blobs") {
        return Ok(Some(Route::Blob(name(n)?, last_s)));
    }
    if let Some(n) = before.strip_suffix("/manifests") {
        return Ok(Some(Route::Manifest(name(n)?, last_s)));
    }
    if let Some(n) = before.strip_suffix("/referrers") {
        return Ok(Some(Route::Referrers(name(n)?, last_s)));
    }
    if let Some(n) = before.strip_suffix("/tags") {
        if last == "list" {
            return Ok(Some(Route::Tags(name(n)?)));
        }
    }
    Ok(None)
}

/// The query's value for `key` (percent-decoded), if given.
pub(crate) fn query_param(q: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded_pairs(q.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hexval = |x: u8| (x as char).to_digit(16).map(|v| v as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hexval(b[i + 1]), hexval(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The access a request needs.
fn access_for(route: &Route, method: &Method, query: Option<&str>) -> Vec<Access> {
    let repo = |n: &Name, actions: Vec<Action>| Access {
        kind: Resource::Repository(n.to_string()),
        actions,
    };
    let actions = match *method {
        Method::GET | Method::HEAD => vec![Action::Pull],
        Method::DELETE => vec![Action::Delete],
        _ => vec![Action::Pull, Action::Push],
    };
    match route {
        Route::Base => Vec::new(),
        Route::Catalog => vec![Access {
            kind: Resource::Catalog,
            actions: vec![Action::All],
        }],
        Route::Tags(n) | Route::Referrers(n, _) => vec![repo(n, vec![Action::Pull])],
        Route::Manifest(n, _) | Route::Blob(n, _) => vec![repo(n, actions)],
        Route::Upload(n, id) => {
            let mut v = vec![repo(n, vec![Action::Pull, Action::Push])];
            if id.is_none() && *method == Method::POST {
                if let Some(from) = query_param(query, "from").and_then(|f| Name::parse(&f)) {
                    if query_param(query, "mount").is_some() {
                        v.push(repo(&from, vec![Action::Pull]));
                    }
                }
            }
            v
        }
    }
}

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every request: route, authorize, handle.
async fn dispatch(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    if path == auth::TOKEN_PATH {
        return token(&st, req).await;
    }
    let route = match parse_route(&path) {
        Ok(Some(r)) => r,
        Ok(None) => return (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
        Err(e) => return e.into_response(),
    };
    if st.opts.read_only && is_write(&method) {
        let why = if st.opts.store {
            "this registry serves berth's image store read-only (--store --read-only): push to it without --read-only, or add images with berth pull, load, import or build"
        } else {
            "this registry is read-only (started with --read-only)"
        };
        return ApiError::new(Code::Unsupported).msg(why).into_response();
    }
    if let Some(l) = st.storage.local() {
        l.refresh().await;
    }
    if let Some(p) = st.proxy.as_ref().filter(|_| is_write(&method)) {
        return ApiError::new(Code::Unsupported)
            .msg(format!(
                "this registry is a pull-through cache of {}: push to that registry",
                p.url()
            ))
            .into_response();
    }
    let access = access_for(&route, &method, query.as_deref());
    let user = match authorize(&st, req.headers(), &access).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(e) = fill_cache(&st, &route, &method).await {
        let mut resp = e.into_response();
        resp.extensions_mut().insert(User(user));
        return resp;
    }
    let mut resp = handle(&st, route, req, query.as_deref())
        .await
        .unwrap_or_else(IntoResponse::into_response);
    resp.extensions_mut().insert(User(user));
    resp
}

async fn handle(
    st: &Arc<AppState>,
    route: Route,
    req: Request,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let m = req.method().clone();
    let unsupported = || {
        Err(ApiError::new(Code::Unsupported)
            .msg(format!("{m} is not allowed here"))
            .status(StatusCode::METHOD_NOT_ALLOWED))
    };
    match route {
        Route::Base => match m {
            Method::GET | Method::HEAD => Ok((
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{}",
            )
                .into_response()),
            _ => unsupported(),
        },
        Route::Catalog => match m {
            Method::GET => tags::catalog(st, query),
            _ => unsupported(),
        },
        Route::Tags(n) => match m {
            Method::GET => tags::list(st, &n, query),
            _ => unsupported(),
        },
        Route::Referrers(n, d) => match m {
            Method::GET => tags::referrers(st, &n, &d, query),
            _ => unsupported(),
        },
        Route::Blob(n, d) => match m {
            Method::GET | Method::HEAD => blobs::get(st, &n, &d, req.headers(), m == Method::HEAD),
            Method::DELETE => blobs::delete(st, &n, &d),
            _ => unsupported(),
        },
        Route::Upload(n, None) => match m {
            Method::POST => blobs::start(st, &n, query, req).await,
            _ => unsupported(),
        },
        Route::Upload(n, Some(id)) => match m {
            Method::GET => blobs::status(st, &n, &id).await,
            Method::PATCH => blobs::patch(st, &n, &id, req).await,
            Method::PUT => blobs::finish(st, &n, &id, query, req).await,
            Method::DELETE => blobs::cancel(st, &n, &id).await,
            _ => unsupported(),
        },
        Route::Manifest(n, r) => match m {
            Method::GET | Method::HEAD => {
                manifests::get(st, &n, &r, req.headers(), m == Method::HEAD)
            }
            Method::PUT => manifests::put(st, &n, &r, req).await,
            Method::DELETE => manifests::delete(st, &n, &r),
            _ => unsupported(),
        },
    }
}

/// The spec's version header on every answer, and the access log line.
async fn log_and_headers(req: Request, next: Next) -> Response {
    let start = Instant::now();
    LAST_REQUEST.store(since_start(), std::sync::atomic::Ordering::Relaxed);
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    let bytes = resp
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| axum::body::HttpBody::size_hint(resp.body()).exact())
        .unwrap_or(0);
    let user = resp.extensions().get::<User>().and_then(|u| u.0.clone());
    let line = serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "method": method,
        "path": path,
        "status": resp.status().as_u16(),
        "bytes": bytes,
        "duration_ms": (start.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "user": user,
        "remote": remote,
    });
    write_line(&line);
    resp
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn(log_and_headers))
        .with_state(state)
}

/// Options that do not go together, refused by name.
fn refuse_not_yet(o: &ServeOptions) -> Result<(), RegistryError> {
    if o.store && o.proxy.is_some() {
        return Err(RegistryError::ServeOptions(
            "registry serve: --store and --proxy do not go together: a pull-through cache keeps its own --root".into(),
        ));
    }
    Ok(())
}

/// One JSON line on stderr outside the access log (startup, stop).
pub(crate) fn log_event(msg: &str, extra: serde_json::Value) {
    let mut line = serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "msg": msg,
    });
    if let (Some(l), Some(e)) = (line.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            l.insert(k.clone(), v.clone());
        }
    }
    write_line(&line);
}

/// One JSON line on stderr in one write (stderr is unbuffered: printing a
/// value piece by piece would cost a system call per piece, and lines of
/// concurrent requests could interleave).
fn write_line(v: &serde_json::Value) {
    use std::io::Write;
    let mut buf = v.to_string().into_bytes();
    buf.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&buf);
}

/// When the last request came, in milliseconds after [`since_start`]'s
/// origin.
static LAST_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Milliseconds since the server's first look at the clock.
fn since_start() -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// How long without a request before the server counts as idle.
const IDLE: Duration = Duration::from_secs(10);

/// Every few seconds the freed heap goes back to the kernel; once the
/// server is idle, the mappings of its code go too (they stay in the page
/// cache; the next request maps what it needs again): an idle registry
/// stays small, as `berth serve` does.
async fn tidy() {
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    let mut unmapped_after = None;
    loop {
        tick.tick().await;
        sys::process::trim_heap();
        let last = LAST_REQUEST.load(std::sync::atomic::Ordering::Relaxed);
        let idle = since_start().saturating_sub(last) >= IDLE.as_millis() as u64;
        if idle && unmapped_after != Some(last) {
            let _ = sys::process::unmap_own_code();
            unmapped_after = Some(last);
        }
    }
}

/// Serve until SIGINT or SIGTERM.
pub fn serve(opts: ServeOptions) -> Result<(), RegistryError> {
    refuse_not_yet(&opts)?;
    let setup = |e: &dyn std::fmt::Display| RegistryError::ServeOptions(e.to_string());
    crate::client::install_crypto_provider();
    let acceptor = match (&opts.tls_cert, &opts.tls_key) {
        (Some(c), Some(k)) => Some(tls::load(c, k).map_err(|e| setup(&e))?),
        (None, None) => None,
        _ => {
            return Err(setup(
                &"--tls-cert and --tls-key go together: give both, or neither for plain HTTP",
            ))
        }
    };
    let proxy = match &opts.proxy {
        Some(url) => {
            let cfg = crate::Config::load(&opts.config_dir)?;
            let creds = crate::Credentials::new(&opts.config_dir);
            let ttl = opts.proxy_ttl.unwrap_or(proxy::DEFAULT_TTL);
            Some(proxy::Proxy::new(url, ttl, &cfg, &creds)?)
        }
        None if opts.proxy_ttl.is_some() => {
            return Err(setup(
                &"--proxy-ttl needs --proxy URL (the upstream to cache)",
            ))
        }
        None => None,
    };
    let storage = if opts.store {
        Storage::for_store(&opts.root, !opts.read_only)?
    } else {
        Storage::open(&opts.root).map_err(RegistryError::io(&opts.root))?
    };
    let listener = std::net::TcpListener::bind(&opts.addr).map_err(|e| RegistryError::Listen {
        addr: opts.addr.clone(),
        reason: e.to_string(),
    })?;
    let local = listener.local_addr().map_err(|e| RegistryError::Listen {
        addr: opts.addr.clone(),
        reason: e.to_string(),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| RegistryError::Listen {
            addr: opts.addr.clone(),
            reason: e.to_string(),
        })?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let auth =
        auth::Authorizer::new(&opts.auth, scheme, &local.to_string()).map_err(|e| setup(&e))?;
    let root = opts.root.clone();
    let flow = match auth.flow() {
        auth::Flow::Open => "none".to_string(),
        auth::Flow::Basic => "basic".to_string(),
        auth::Flow::Token { realm, .. } => format!("token (realm {realm})"),
    };
    let upstream = proxy.as_ref().map(|p| p.url().to_string());
    let state = Arc::new(AppState {
        opts,
        storage,
        uploads: blobs::Uploads::default(),
        auth,
        proxy,
    });
    // Two arenas for the workers and the blocking threads: a burst of
    // uploads otherwise leaves free memory scattered over an arena per
    // thread it started.
    sys::process::limit_malloc_arenas(2);
    since_start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Uploads write on the blocking pool: a few threads are plenty,
        // and idle ones go soon (each holds its stack and malloc arena).
        .max_blocking_threads(16)
        .thread_keep_alive(Duration::from_secs(2))
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Listen {
            addr: local.to_string(),
            reason: format!("starting the runtime: {e}"),
        })?;
    let r = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tidying = tokio::spawn(tidy());
        let limits = state.opts.limits;
        let app = router(state);
        let server = tokio::spawn(listen::serve(listener, app, acceptor, stop_rx, limits));
        log_event(
            "listening",
            serde_json::json!({
                "addr": local.to_string(),
                "root": root.display().to_string(),
                "scheme": scheme,
                "auth": flow,
                "proxy": upstream,
            }),
        );
        let sig = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log_event("stopping", serde_json::json!({ "signal": sig }));
        tidying.abort();
        let _ = stop_tx.send(true);
        if tokio::time::timeout(GRACE, server).await.is_err() {
            log_event(
                "stopped with requests under way (their uploads stay in uploads/ until the next start)",
                serde_json::json!({}),
            );
        }
        Ok::<(), std::io::Error>(())
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    r.map_err(|e| RegistryError::Listen {
        addr: local.to_string(),
        reason: e.to_string(),
    })?;
    log_event("stopped", serde_json::json!({}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn routes() {
        assert_eq!(parse_route("/v2/").unwrap(), Some(Route::Base));
        assert_eq!(parse_route("/v2/_catalog").unwrap(), Some(Route::Catalog));
        assert_eq!(
            parse_route("/v2/a/b/tags/list").unwrap(),
            Some(Route::Tags(n("a/b")))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/").unwrap(),
            Some(Route::Upload(n("a"), None))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/x").unwrap(),
            Some(Route::Upload(n("a"), Some("x".into())))
        );
        // A repository may itself be called blobs or manifests.
        assert_eq!(
            parse_route("/v2/blobs/manifests/manifests/latest").unwrap(),
            Some(Route::Manifest(n("blobs/manifests"), "latest".into()))
        );
        assert_eq!(
            parse_route("/v2/x/blobs/sha256:00").unwrap(),
            Some(Route::Blob(n("x"), "sha256:00".into()))
        );
        assert_eq!(parse_route("/v2/x/nothing").unwrap(), None);
        assert_eq!(parse_route("/other").unwrap(), None);
        for bad in [
            "/v2/../x/blobs/uploads/",
            "/v2/%2e%2e/x/manifests/latest",
            "/v2//etc/blobs/sha256:00",
            "/v2/a/../../b/tags/list",
        ] {
            assert_eq!(
                parse_route(bad).unwrap_err().code,
                Code::NameInvalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn access_per_route() {
        let a = access_for(
            &Route::Upload(n("a"), None),
            &Method::POST,
            Some("mount=sha256:00&from=b"),
        );
        assert_eq!(
            a.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            ["repository:a:pull,push", "repository:b:pull"]
        );
        let a = access_for(&Route::Catalog, &Method::GET, None);
        assert_eq!(a[0].to_string(), "registry:catalog:*");
        let a = access_for(&Route::Manifest(n("a"), "t".into()), &Method::DELETE, None);
        assert_eq!(a[0].to_string(), "repository:a:delete");
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param(Some("digest=sha256%3Aab&n=2"), "digest").as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(query_param(Some("a=%zz"), "a").as_deref(), Some("%zz"));
        assert_eq!(query_param(Some("a=%4"), "a").as_deref(), Some("%4"));
        assert_eq!(query_param(None, "a"), None);
    }
}
