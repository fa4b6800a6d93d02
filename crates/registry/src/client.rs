//! One registry endpoint: scheme and TLS, the auth flows, error mapping.
//!
//! The first request pings `/v2/` (as Docker does), which picks the
//! scheme (HTTPS, or plain HTTP for an insecure registry that does not
//! speak TLS) and learns the auth challenge. Requests then carry basic
//! credentials or a bearer token fetched for their scope and cached; a
//! 401 with a fresh challenge refreshes the token once. Redirects (blob
//! downloads served from another host) are followed by reqwest, which
//! drops `Authorization` when the host, port or scheme changes.
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use crate::auth::{parse_challenge, Challenge, Credential, Credentials, TokenCache, TokenResponse};
use crate::config::Config;
use crate::RegistryError;

/// Largest error body or token response we read.
const SMALL_BODY: u64 = 1 << 20;

#[derive(Debug, Default)]
struct AuthState {
    pinged: bool,
    challenge: Option<Challenge>,
    tokens: TokenCache,
}

/// A registry (or mirror) endpoint.
#[derive(Debug)]
pub struct Registry {
    /// `host[:port]` as in references and config.
    host: String,
    /// Path prefix of a mirror (`cache.local/quay` → `quay/`).
    prefix: String,
    insecure: bool,
    certs_dir: String,
    base: Mutex<String>,
    http: Client,
    /// [`Config::idle_timeout`].
    idle: Duration,
    cred: Option<Credential>,
    state: Mutex<AuthState>,
}

/// What a request needs access to: `repository:<name>:<actions>`, possibly
/// several (a cross-repository mount needs pull on the source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(pub Vec<String>);

impl Scope {
    /// Pull access to `repo`.
    pub fn pull(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull")])
    }
    /// Push (and pull) access to `repo`.
    pub fn push(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }
    /// No repository (login).
    pub fn none() -> Scope {
        Scope(Vec::new())
    }
    /// Also pull access to `repo`.
    pub fn and_pull(mut self, repo: &str) -> Scope {
        self.0.push(format!("repository:{repo}:pull"));
        self
    }
    fn key(&self) -> String {
        self.0.join(" ")
    }
}

/// Install rustls's ring provider once (any HTTP client needs it).
pub(crate) fn install_crypto_provider() {
    install_crypto()
}

fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Registry {
    /// An endpoint for `location` (`host[:port][/path]`), with its TLS
    /// settings from `cfg` and credentials for its host from `creds`.
    pub fn new(
        cfg: &Config,
        creds: &Credentials,
        location: &str,
    ) -> Result<Registry, RegistryError> {
        install_crypto();
        let (host, prefix) = match location.split_once('/') {
            Some((h, p)) => (h.to_string(), format!("{}/", p.trim_matches('/'))),
            None => (location.to_string(), String::new()),
        };
        let insecure = cfg.insecure(&host);
        let idle = cfg.idle_timeout();
        let mut b = idle_bounded(Client::builder(), idle)
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        for p in cfg.ca_certs(&host) {
            let pem = std::fs::read(&p).map_err(RegistryError::io(&p))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| RegistryError::Config {
                path: p.clone(),
                reason: format!("not a PEM certificate: {e}"),
            })?;
            b = b.add_root_certificate(cert);
        }
        let http = b.build().map_err(|e| RegistryError::Connect {
            host: host.clone(),
            reason: format!("cannot set up an HTTP client: {e}"),
        })?;
        let certs_dir = cfg.dir().join("certs.d").join(&host).display().to_string();
        let cred = creds.get(&host)?;
        Ok(Registry {
            base: Mutex::new(format!("https://{}", crate::api_host(&host))),
            host,
            prefix,
            insecure,
            certs_dir,
            http,
            idle,
            cred,
            state: Mutex::new(AuthState::default()),
        })
    }

    /// `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Override the credentials (login checks new ones).
    pub fn with_credential(mut self, c: Option<Credential>) -> Registry {
        self.cred = c;
        self
    }

    /// The repository path on this endpoint (a mirror may add a prefix).
    pub fn repo_path(&self, repo: &str) -> String {
        format!("{}{repo}", self.prefix)
    }

    /// `scheme://host` of the API.
    pub fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Absolute URL of an API path (`/v2/...`) or a `Location` header.
    pub fn url(&self, path_or_url: &str) -> String {
        // The scheme is known once /v2/ answered; a failure shows again
        // when the request is sent.
        let _ = self.ping();
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.base(), path_or_url)
        }
    }

    /// The HTTP client (for blob bodies).
    pub fn http(&self) -> &Client {
        &self.http
    }

    pub(crate) fn map_send_error(&self, e: reqwest::Error) -> RegistryError {
        if let Some(sending) = stalled(&e) {
            return RegistryError::Stalled {
                peer: "registry",
                host: self.host.clone(),
                secs: self.idle.as_secs(),
                sending,
            };
        }
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(&e);
        let mut tls = false;
        while let Some(s) = src {
            let t = s.to_string();
            if s.downcast_ref::<rustls::Error>().is_some()
                || t.contains("certificate")
                || t.contains("InvalidContentType")
                || t.contains("tls")
            {
                tls = true;
            }
            let wrapper = t.starts_with("error sending request")
                || t.starts_with("client error")
                || t == "tcp connect error";
            if !wrapper && !chain.contains(&t) {
                if !chain.is_empty() {
                    chain.push_str(": ");
                }
                chain.push_str(&t);
            }
            src = s.source();
        }
        if tls {
            RegistryError::Tls {
                host: self.host.clone(),
                reason: chain,
                certs_dir: self.certs_dir.clone(),
            }
        } else {
            RegistryError::Connect {
                host: self.host.clone(),
                reason: chain,
            }
        }
    }

    /// GET /v2/: pick the scheme, learn the challenge.
    pub fn ping(&self) -> Result<(), RegistryError> {
        if self.state.lock().unwrap_or_else(|e| e.into_inner()).pinged {
            return Ok(());
        }
        let api = crate::api_host(&self.host).to_string();
        let https = format!("https://{api}");
        let resp = match self.http.get(format!("{https}/v2/")).send() {
            Ok(r) => r,
            Err(e) if self.insecure && (e.is_connect() || e.is_request()) => {
                let http = format!("http://{api}");
                let r = self
                    .http
                    .get(format!("{http}/v2/"))
                    .send()
                    .map_err(|e| self.map_send_error(e))?;
                *self.base.lock().unwrap_or_else(|e| e.into_inner()) = http;
                r
            }
            Err(e) => return Err(self.map_send_error(e)),
        };
        let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
            let c = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(parse_challenge);
            if c.is_none() {
                return Err(RegistryError::Unauthorized {
                    reason: format!(
                        "{} answered 401 without a usable WWW-Authenticate challenge",
                        self.host
                    ),
                });
            }
            c
        } else if resp.status().is_success() {
            None
        } else if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::Protocol(format!(
                "{} does not serve the registry API (GET /v2/ answered 404)",
                self.host
            )));
        } else {
            return Err(status_error(&format!("GET /v2/ on {}", self.host), resp));
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pinged = true;
        st.challenge = challenge;
        Ok(())
    }

    /// The Authorization header for `scope`, fetching a token if needed.
    fn authorization(&self, scope: &Scope, fresh: bool) -> Result<Option<String>, RegistryError> {
        let challenge = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if fresh {
                st.tokens.remove(&scope.key());
            } else if let Some(t) = st.tokens.get(&scope.key()) {
                return Ok(Some(format!("Bearer {t}")));
            }
            st.challenge.clone()
        };
        match challenge {
            None => Ok(None),
            // Without credentials the request goes without (a registry may
            // let anonymous clients pull and still challenge `/v2/`, as
            // docker's client expects); a 401 then asks for a login.
            Some(Challenge::Basic) => Ok(self.cred.as_ref().map(Credential::basic)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .tokens
                    .insert(scope.key(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<String, RegistryError> {
        let mut url = reqwest::Url::parse(realm).map_err(|e| {
            RegistryError::Protocol(format!("the token realm {realm:?} is not a URL: {e}"))
        })?;
        check_realm(&self.host, self.insecure, &url)?;
        let realm_host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let token_error = |e: reqwest::Error| match stalled(&e) {
            Some(sending) => RegistryError::Stalled {
                peer: "token server",
                host: realm_host.clone(),
                secs: self.idle.as_secs(),
                sending,
            },
            None => self.map_send_error(e),
        };
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in &scope.0 {
                q.append_pair("scope", s);
            }
        }
        let mut req = self.http.get(url);
        if let Some(c) = &self.cred {
            req = req.header(AUTHORIZATION, c.basic());
        }
        let resp = req.send().map_err(token_error)?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                reason: format!(
                    "the token server of {} refused {}: {}",
                    self.host,
                    if self.cred.is_some() {
                        "the saved credentials (run `berth login` again)"
                    } else {
                        "anonymous access (run `berth login` first)"
                    },
                    error_detail(resp).trim_start_matches(": ")
                ),
            });
        }
        if !resp.status().is_success() {
            return Err(status_error("fetching a token", resp));
        }
        let body = read_limited_from(resp, SMALL_BODY, "token response", |e| {
            stalled_read(e).map(|()| RegistryError::Stalled {
                peer: "token server",
                host: realm_host.clone(),
                secs: self.idle.as_secs(),
                sending: false,
            })
        })?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::Protocol(format!("the token server sent invalid JSON: {e}"))
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol("the token server sent no token".into()))
    }

    /// Send a request built by `build` (called again for the retry after
    /// a token refresh), authorised for `scope`. 401/403 become
    /// [`RegistryError::Unauthorized`]; other statuses are returned.
    pub fn send(
        &self,
        scope: &Scope,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.ping()?;
        let mut fresh = false;
        loop {
            let mut req = build(&self.http);
            if let Some(a) = self.authorization(scope, fresh)? {
                let mut v = HeaderValue::from_str(&a).map_err(|_| {
                    RegistryError::Protocol("the token has invalid characters".into())
                })?;
                v.set_sensitive(true);
                req = req.header(AUTHORIZATION, v);
            }
            let resp = req.send().map_err(|e| self.map_send_error(e))?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if !fresh => {
                    let bearer = matches!(
                        self.state
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .challenge,
                        Some(Challenge::Bearer { .. })
                    );
                    if !bearer && self.cred.is_none() {
                        return Err(RegistryError::Unauthorized {
                            reason: format!(
                                "{} needs a user name and password: run `berth login {}`",
                                self.host, self.host
                            ),
                        });
                    }
                    if !bearer {
                        return Err(unauthorized(&self.host, resp));
                    }
                    fresh = true;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(unauthorized(&self.host, resp))
                }
                _ => return Ok(resp),
            }
        }
    }
}

fn unauthorized(host: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let detail = error_detail(resp);
    RegistryError::Unauthorized {
        reason: format!(
            "{host} answered {status}{detail} (check the name, and run `berth login {host}` if it needs credentials)"
        ),
    }
}

/// The registry's error text (`{"errors":[{"code","message"}]}`), as
/// `": CODE: message"`, or empty.
pub(crate) fn error_detail(resp: Response) -> String {
    let Ok(body) = read_small(resp) else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<Errs>(&body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}{}",
                    e.code.as_deref().unwrap_or("ERROR"),
                    e.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        if !parts.is_empty() {
            return format!(": {}", parts.join("; "));
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.chars().take(200).collect::<String>())
    }
}

pub(crate) fn status_error(what: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    RegistryError::Status {
        what: what.to_string(),
        status,
        detail: error_detail(resp),
    }
}

/// Read at most [`SMALL_BODY`] bytes (an error's text: a stall gives
/// none).
fn read_small(resp: Response) -> Result<Vec<u8>, RegistryError> {
    read_limited_from(resp, SMALL_BODY, "response", |_| None)
}

impl Registry {
    /// Read a body of at most `limit` bytes, or fail.
    pub(crate) fn read_limited(
        &self,
        resp: Response,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        read_limited_from(resp, limit, what, |e| {
            stalled_read(e).map(|()| self.stalled_reading())
        })
    }

    /// The error of a body read that timed out.
    pub(crate) fn stalled_reading(&self) -> RegistryError {
        RegistryError::Stalled {
            peer: "registry",
            host: self.host.clone(),
            secs: self.idle.as_secs(),
            sending: false,
        }
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }
}

/// A client builder whose every wait is bounded by `idle`: the request
/// and its answer's headers, each read of the body (reqwest's blocking
/// timeout applies per read: an idle timeout, not a total one), the
/// connect, and — through `TCP_USER_TIMEOUT` — data we send that the peer
/// leaves unacknowledged (or its window shut) for that long: a server that
/// stops reading an upload. Uploads of whole blobs lift the request's own
/// bound ([`upload_timeout`]).
pub(crate) fn idle_bounded(
    b: reqwest::blocking::ClientBuilder,
    idle: Duration,
) -> reqwest::blocking::ClientBuilder {
    b.timeout(idle)
        .connect_timeout(idle.min(Duration::from_secs(30)))
        .tcp_user_timeout(idle)
}

/// The bound of one blob upload request: reqwest's blocking timeout covers
/// the whole body and the answer, so it is stretched by the body's size
/// at a floor rate of 16 KiB/s; a peer that takes nothing at all is cut by
/// the kernel after the idle timeout (`TCP_USER_TIMEOUT`).
pub(crate) fn upload_timeout(idle: Duration, size: u64) -> Duration {
    idle + Duration::from_secs(size / (16 << 10))
}

/// Did a request fail because the peer went quiet? `Some(true)` when the
/// kernel gave up on data we sent (the peer stopped reading), `Some(false)`
/// when nothing came back in time.
pub(crate) fn stalled(e: &reqwest::Error) -> Option<bool> {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Some(true);
            }
        }
        src = s.source();
    }
    e.is_timeout().then_some(false)
}

/// Did a body read time out?
pub(crate) fn stalled_read(e: &std::io::Error) -> Option<()> {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return Some(());
    }
    let inner = e.get_ref()?;
    let r = inner.downcast_ref::<reqwest::Error>()?;
    stalled(r).map(drop)
}

/// A bearer challenge's realm is where the credentials go: only over
/// https, unless the registry itself is insecure (listed so, or on
/// loopback), as the registry's own traffic then is too. A realm on
/// another host is allowed (Docker Hub's is auth.docker.io), over https.
pub(crate) fn check_realm(
    host: &str,
    insecure: bool,
    realm: &reqwest::Url,
) -> Result<(), RegistryError> {
    match realm.scheme() {
        "https" => Ok(()),
        "http" if insecure => Ok(()),
        _ => Err(RegistryError::InsecureRealm {
            host: host.to_string(),
            realm: realm.to_string(),
        }),
    }
}

/// Read a body of at most `limit` bytes, or fail; `stall` turns a read
/// error into the caller's error for a stalled peer.
pub(crate) fn read_limited_from(
    resp: Response,
    limit: u64,
    what: &str,
    stall: impl Fn(&std::io::Error) -> Option<RegistryError>,
) -> Result<Vec<u8>, RegistryError> {
    use std::io::Read;
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(RegistryError::Protocol(format!(
            "the {what} is larger than {limit} bytes"
        )));
    }
    let mut v = Vec::new();
    resp.take(limit + 1).read_to_end(&mut v).map_err(|e| {
        stall(&e).unwrap_or_else(|| RegistryError::Protocol(format!("reading the {what}: {e}")))
    })?;
    if v.len() as u64 > limit {
        return Err(RegistryError::Protocol(format!(
            "the {what} is larger than {limit} bytes"
        )));
    }
    Ok(v)
}

impl Registry {
    /// Check the credentials: basic auth on `/v2/`, or a token from the
    /// token server (with no scope, as `docker login` asks).
    pub fn login(&self) -> Result<(), RegistryError> {
        self.ping()?;
        let challenge = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .challenge
            .clone();
        match challenge {
            None => Ok(()),
            Some(Challenge::Bearer { realm, service, .. }) => self
                .fetch_token(&realm, service.as_deref(), &Scope::none())
                .map(drop)
                .map_err(|e| match e {
                    RegistryError::Unauthorized { .. } => RegistryError::Unauthorized {
                        reason: "incorrect username or password".into(),
                    },
                    e => e,
                }),
            Some(Challenge::Basic) => {
                let url = self.url("/v2/");
                let mut req = self.http.get(&url);
                if let Some(c) = &self.cred {
                    req = req.header(AUTHORIZATION, c.basic());
                }
                let resp = req.send().map_err(|e| self.map_send_error(e))?;
                if resp.status().is_success() {
                    Ok(())
                } else if resp.status() == StatusCode::UNAUTHORIZED {
                    Err(RegistryError::Unauthorized {
                        reason: "incorrect username or password".into(),
                    })
                } else {
                    Err(status_error(&format!("logging in to {}", self.host), resp))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realm(host: &str, insecure: bool, url: &str) -> Result<(), RegistryError> {
        check_realm(host, insecure, &reqwest::Url::parse(url).unwrap())
    }

    /// Issue 20: credentials go to a token server over https only, unless
    /// the registry itself is insecure (listed so, or on loopback).
    #[test]
    fn token_realms_need_https_unless_the_registry_is_insecure() {
        let e = realm(
            "registry.example.com",
            false,
            "http://auth.example.com/token",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("http://auth.example.com/token")
                && e.contains("not https")
                && e.contains("insecure = true"),
            "{e}"
        );
        // Even on the registry's own host, or a loopback token server.
        assert!(realm(
            "registry.example.com",
            false,
            "http://registry.example.com/t"
        )
        .is_err());
        assert!(realm("registry.example.com", false, "http://127.0.0.1/t").is_err());
        // Another host over https is fine (Docker Hub's is auth.docker.io).
        realm(
            "registry.example.com",
            false,
            "https://auth.example.com/token",
        )
        .unwrap();
        // An insecure registry (its own traffic is plain already).
        realm("127.0.0.1:5000", true, "http://127.0.0.1:5000/token").unwrap();
        realm("registry.lan", true, "http://auth.lan/token").unwrap();
        // No other scheme, ever.
        assert!(realm("127.0.0.1:5000", true, "ftp://127.0.0.1/token").is_err());
        assert!(realm("127.0.0.1:5000", true, "file:///etc/passwd").is_err());
    }

    /// A loopback registry is insecure by default, so its http realm is
    /// allowed; listed `insecure = false`, it is not.
    #[test]
    fn loopback_is_insecure_unless_listed_secure() {
        let d = tempfile::tempdir().unwrap();
        let creds = Credentials::only(&d.path().join("config.json"));
        let cfg = Config::load(d.path()).unwrap();
        let r = Registry::new(&cfg, &creds, "127.0.0.1:5000").unwrap();
        assert!(r.insecure);
        std::fs::write(
            d.path().join("registries.toml"),
            "[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = false\n",
        )
        .unwrap();
        let cfg = Config::load(d.path()).unwrap();
        let r = Registry::new(&cfg, &creds, "127.0.0.1:5000").unwrap();
        assert!(!r.insecure);
        assert!(check_realm(
            r.host(),
            r.insecure,
            &"http://127.0.0.1:5000/t".parse().unwrap()
        )
        .is_err());
    }
}
