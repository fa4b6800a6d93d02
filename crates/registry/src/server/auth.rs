//! Who may do what on the registry server: htpasswd users (bcrypt, as
//! `htpasswd -B` writes them), an optional access policy, anonymous reads,
//! and the two flows clients know — HTTP Basic on every request, or docker's
//! token auth (<https://distribution.github.io/distribution/spec/auth/token/>)
//! with a token endpoint built into the same server.
//!
//! Tokens are JWTs signed ES256 with a P-256 key made at start and never
//! written anywhere (ring, the crypto rustls already uses here): a restart
//! invalidates every token, and clients simply fetch a new one on the 401.
//! They carry docker's `access` claim (`[{type, name, actions}]`); the
//! registry checks signature, algorithm, issuer, audience (the service),
//! expiry and that the claim covers what the request needs.
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::errors::{ApiError, Code};
pub use super::{Access, Action, Resource};

/// The realm of the Basic challenge (what browsers show).
pub const BASIC_REALM: &str = "berth-registry";
/// The service (token audience) when `--token-service` is not given.
pub const DEFAULT_SERVICE: &str = "berth-registry";
/// The token issuer when `--token-issuer` is not given.
pub const DEFAULT_ISSUER: &str = "berth-registry";

/// The DER prefix of a P-256 public key's SubjectPublicKeyInfo
/// (id-ecPublicKey, prime256v1, then a 66-byte bit string): what
/// `openssl pkey -pubout` writes for an ES256 key. The 65 bytes after it
/// are the uncompressed point ring verifies with.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// How long a token lives (Docker Hub's: 300 s). Clients fetch a new one
/// on the next 401.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Why a scope, an htpasswd file, a policy or a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file could not be read.
    #[error("{flag} {path}: cannot read it: {source}")]
    Read {
        /// The flag that named it (`--htpasswd`, `--access`).
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line of the htpasswd file is not something we accept.
    #[error("{path} line {line}: {reason}")]
    Htpasswd {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The access policy file is wrong.
    #[error("{path}: {reason}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `scope` parameter that is not `TYPE:NAME:ACTIONS`.
    #[error("invalid scope {scope:?}: {reason}")]
    Scope {
        /// The scope.
        scope: String,
        /// What is wrong.
        reason: String,
    },
    /// The options do not fit together.
    #[error("{0}")]
    Options(String),
    /// The signing key could not be made (the system's random source).
    #[error("cannot make the token signing key: {0}")]
    Key(String),
}

/// Whether `name` is a repository name the distribution spec allows:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|component| {
            let b = component.as_bytes();
            let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
                return false;
            }
            let mut i = 0;
            while i < b.len() {
                if alnum(b[i]) {
                    i += 1;
                    continue;
                }
                // A separator: `.`, `_`, `__` or one or more `-`.
                let start = i;
                match b[i] {
                    b'.' => i += 1,
                    b'_' => {
                        i += 1;
                        if i < b.len() && b[i] == b'_' {
                            i += 1;
                        }
                    }
                    b'-' => {
                        while i < b.len() && b[i] == b'-' {
                            i += 1;
                        }
                    }
                    _ => return false,
                }
                if i == start || i >= b.len() || !alnum(b[i]) {
                    return false;
                }
            }
            true
        })
}

/// The actions of `asked`, `*` spelled out, each once, in the order
/// pull, push, delete.
pub fn expand(asked: &[Action]) -> Vec<Action> {
    [Action::Pull, Action::Push, Action::Delete]
        .into_iter()
        .filter(|a| asked.contains(a) || asked.contains(&Action::All))
        .collect()
}

/// Parse one `scope` value of a token request. Docker clients send one
/// scope per parameter; some join several with spaces, so both are taken.
/// `repository(plugin):…` (docker's plugin class) is refused: this registry
/// serves images and artifacts only.
pub fn parse_scopes(value: &str) -> Result<Vec<Access>, AuthError> {
    value
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(parse_scope)
        .collect()
}

fn parse_scope(scope: &str) -> Result<Access, AuthError> {
    let bad = |reason: &str| AuthError::Scope {
        scope: scope.to_string(),
        reason: reason.to_string(),
    };
    let (kind, rest) = scope
        .split_once(':')
        .ok_or_else(|| bad("expected TYPE:NAME:ACTIONS"))?;
    let (name, actions) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected TYPE:NAME:ACTIONS"))?;
    if kind.contains('(') {
        return Err(bad(
            "resource classes (such as repository(plugin)) are not served by this registry",
        ));
    }
    match kind {
        "registry" => {
            if name != "catalog" {
                return Err(bad("the only registry resource is registry:catalog:*"));
            }
            Ok(Access {
                kind: Resource::Catalog,
                actions: vec![Action::All],
            })
        }
        "repository" => {
            if !valid_repository_name(name) {
                return Err(bad("not a valid repository name"));
            }
            let mut asked = Vec::new();
            for a in actions.split(',') {
                match a {
                    "pull" => asked.push(Action::Pull),
                    "push" => asked.push(Action::Push),
                    "delete" => asked.push(Action::Delete),
                    // containers/image asks `*` to delete.
                    "*" => asked.push(Action::All),
                    // Unknown actions are granted nothing (docker's auth
                    // servers ignore them too).
                    _ => {}
                }
            }
            Ok(Access {
                kind: Resource::Repository(name.to_string()),
                actions: expand(&asked),
            })
        }
        _ => Err(bad("the type must be repository or registry")),
    }
}

/// The users of an htpasswd file. Only bcrypt entries (`$2y$`, `$2b$`,
/// `$2a$`: `htpasswd -B`) are accepted: the other kinds htpasswd can write
/// (`$apr1$` MD5, `{SHA}`, crypt, plain) are fast to brute-force.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// Checked for unknown users, so that a wrong user name costs as much
    /// time as a wrong password and does not tell which users exist.
    decoy: String,
    /// Credentials checked recently, by SHA-256 of user and password: a
    /// bcrypt check costs milliseconds (cost 5) to a quarter second (12),
    /// and clients send Basic credentials on every request.
    known_good: Mutex<HashMap<[u8; 32], String>>,
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Htpasswd({} users)", self.users.len())
    }
}

/// How many checked credentials are remembered before the memory is
/// cleared.
const KNOWN_GOOD_MAX: usize = 1024;

impl Htpasswd {
    /// Read `path`; every line is `user:hash`, blank lines and `#` comments
    /// are skipped.
    pub fn load(path: &Path) -> Result<Htpasswd, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            flag: "--htpasswd",
            path: path.to_path_buf(),
            source,
        })?;
        Htpasswd::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Htpasswd, AuthError> {
        let mut users = HashMap::new();
        let mut cost = None;
        for (i, line) in text.lines().enumerate() {
            let err = |reason: String| AuthError::Htpasswd {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or_else(|| {
                err("expected user:hash (make entries with `htpasswd -B FILE USER`)".into())
            })?;
            if user.is_empty() {
                return Err(err("the user name is empty".into()));
            }
            let kind = if hash.starts_with("$apr1$") {
                Some("an Apache MD5 ($apr1$) hash")
            } else if hash.starts_with("{SHA}") {
                Some("a SHA-1 ({SHA}) hash")
            } else if !(hash.starts_with("$2y$")
                || hash.starts_with("$2b$")
                || hash.starts_with("$2a$"))
            {
                Some("not a bcrypt hash (crypt, plain text or unknown)")
            } else {
                None
            };
            if let Some(kind) = kind {
                return Err(err(format!(
                    "user {user:?} has {kind}; only bcrypt is accepted: set the password again with `htpasswd -B {} {user}`",
                    path.display()
                )));
            }
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
                err(format!(
                    "user {user:?}: the bcrypt hash is malformed ({e}); set the password again with `htpasswd -B {} {user}`",
                    path.display()
                ))
            })?;
            cost.get_or_insert(parts.get_cost());
            if users.insert(user.to_string(), hash.to_string()).is_some() {
                return Err(err(format!("user {user:?} is listed twice")));
            }
        }
        if users.is_empty() {
            return Err(AuthError::Htpasswd {
                path: path.to_path_buf(),
                line: 0,
                reason: "no users in it (add one with `htpasswd -B FILE USER`)".into(),
            });
        }
        let decoy = bcrypt::hash("berth decoy password", cost.unwrap_or(bcrypt::DEFAULT_COST))
            .map_err(|e| AuthError::Key(e.to_string()))?;
        Ok(Htpasswd {
            users,
            decoy,
            known_good: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `password` is `user`'s. Slow on a first check (bcrypt):
    /// call it off the async threads.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let mut h = Sha256::new();
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        if let Some(u) = self
            .known_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return u == user;
        }
        let ok = match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(password, &self.decoy);
                false
            }
        };
        if ok {
            let mut known = self.known_good.lock().unwrap_or_else(|e| e.into_inner());
            if known.len() >= KNOWN_GOOD_MAX {
                known.clear();
            }
            known.insert(key, user.to_string());
        }
        ok
    }

    /// Whether `user` is listed.
    pub fn has_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }
}

/// Which authenticated users may do what (`--access FILE`). Without a
/// file every htpasswd user may pull, push and delete everything and list
/// the catalog (what distribution's htpasswd mode does).
///
/// ```toml
/// [[allow]]
/// users = ["ci"]                 # htpasswd users; "*" = every one
/// repositories = ["team/*"]      # "*" matches any characters, "/" too
/// actions = ["pull", "push"]     # pull, push, delete
/// catalog = false                # may list /v2/_catalog
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `None`: everything for everyone authenticated.
    rules: Option<Vec<Rule>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    users: Vec<String>,
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    catalog: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: Vec<Rule>,
}

/// `*` matches any run of characters (slashes too); everything else is
/// literal.
fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    if parts.is_empty() {
        return rest.is_empty();
    }
    for (i, p) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

impl Policy {
    /// Read and check an access file against the users of `htpasswd`.
    pub fn load(path: &Path, htpasswd: &Htpasswd) -> Result<Policy, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            flag: "--access",
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(path, &text, htpasswd)
    }

    fn parse(path: &Path, text: &str, htpasswd: &Htpasswd) -> Result<Policy, AuthError> {
        let bad = |reason: String| AuthError::Policy {
            path: path.to_path_buf(),
            reason,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (i, r) in file.allow.iter().enumerate() {
            for u in &r.users {
                if u != "*" && !htpasswd.has_user(u) {
                    return Err(bad(format!(
                        "allow rule {}: user {u:?} is not in the htpasswd file",
                        i + 1
                    )));
                }
            }
            for a in &r.actions {
                if !matches!(a.as_str(), "pull" | "push" | "delete") {
                    return Err(bad(format!(
                        "allow rule {}: unknown action {a:?} (use pull, push, delete)",
                        i + 1
                    )));
                }
            }
        }
        Ok(Policy {
            rules: Some(file.allow),
        })
    }

    fn rules_for<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .flatten()
            .filter(move |r| r.users.iter().any(|u| u == "*" || u == user))
    }

    /// Whether the authenticated `user` may do `action` on `resource`.
    pub fn allows(&self, user: &str, resource: &Resource, action: Action) -> bool {
        if self.rules.is_none() {
            return true;
        }
        match resource {
            Resource::Catalog => self.rules_for(user).any(|r| r.catalog),
            Resource::Repository(name) => self.rules_for(user).any(|r| {
                r.actions.iter().any(|a| a == action.as_str())
                    && r.repositories.iter().any(|p| glob(p, name))
            }),
        }
    }
}

/// The token signing key.
struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    fn new() -> Result<Signer, AuthError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|e| AuthError::Key(e.to_string()))?;
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|e| AuthError::Key(e.to_string()))?;
        Ok(Signer { pair, rng })
    }

    /// `--token-signing-key FILE`: a P-256 private key, PKCS#8 PEM, so
    /// that other registries can verify this server's tokens with its
    /// public half (`--token-key`).
    fn load(path: &Path) -> Result<Signer, AuthError> {
        use rustls::pki_types::{pem::PemObject, PrivatePkcs8KeyDer};
        let bad = |reason: String| {
            AuthError::Options(format!("--token-signing-key {}: {reason}", path.display()))
        };
        let der = PrivatePkcs8KeyDer::from_pem_file(path).map_err(|e| {
            bad(format!(
                "{e} (expected a PKCS#8 PEM P-256 key: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)"
            ))
        })?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| bad(format!("not a P-256 key for ES256: {e}")))?;
        Ok(Signer { pair, rng })
    }
}

/// `--token-key FILE`: the public key of an external token server, a
/// P-256 SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`); its
/// uncompressed point.
fn load_public_key(path: &Path) -> Result<Vec<u8>, AuthError> {
    use rustls::pki_types::{pem::PemObject, SubjectPublicKeyInfoDer};
    let bad =
        |reason: String| AuthError::Options(format!("--token-key {}: {reason}", path.display()));
    let der = SubjectPublicKeyInfoDer::from_pem_file(path).map_err(|e| {
        bad(format!(
            "{e} (expected the token server's P-256 public key as PEM: openssl pkey -in KEY.pem -pubout)"
        ))
    })?;
    match der.as_ref().strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
        _ => Err(bad(
            "not a P-256 public key: tokens are verified as ES256 only".into(),
        )),
    }
}

/// One entry of a token's `access` claim (docker's token format).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClaimAccess {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository name, or `catalog`.
    pub name: String,
    /// `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    iss: String,
    /// The user; empty for anonymous.
    pub sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    /// What the token grants.
    pub access: Vec<ClaimAccess>,
}

impl Claims {
    fn covers(&self, need: &Access) -> bool {
        match &need.kind {
            Resource::Catalog => self
                .access
                .iter()
                .any(|a| a.kind == "registry" && a.name == "catalog"),
            Resource::Repository(name) => expand(&need.actions).iter().all(|act| {
                self.access.iter().any(|a| {
                    a.kind == "repository"
                        && &a.name == name
                        && a.actions.iter().any(|x| x == act.as_str() || x == "*")
                })
            }),
        }
    }
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How clients authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// No authentication: everyone may do everything (the default, as
    /// `registry:2` without an auth section). Listen on 127.0.0.1 only,
    /// or put TLS and `--htpasswd` in front.
    Open,
    /// HTTP Basic on every request.
    Basic,
    /// Docker's token auth with the built-in token endpoint.
    Token {
        /// The URL clients are sent to for tokens.
        realm: String,
        /// The token audience.
        service: String,
    },
}

/// What `--htpasswd`, `--access`, `--anonymous-read`, `--token-realm` and
/// `--token-service` ask.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// The users.
    pub htpasswd: Option<PathBuf>,
    /// Who may do what; every user everything without it.
    pub access: Option<PathBuf>,
    /// Pulls without credentials.
    pub anonymous_read: bool,
    /// Token auth: the realm to advertise (the built-in endpoint is at
    /// `/token` of this server; the realm is how clients reach it).
    pub token_realm: Option<String>,
    /// Token auth's service name (the token audience).
    pub token_service: Option<String>,
    /// `--token-issuer`: the `iss` tokens are issued with and must carry.
    pub token_issuer: Option<String>,
    /// `--token-key`: verify tokens of an external token server (at
    /// `--token-realm`) with this public key instead of issuing them.
    pub token_key: Option<PathBuf>,
    /// `--token-signing-key`: sign this server's tokens with this key
    /// instead of one made at start.
    pub token_signing_key: Option<PathBuf>,
}

/// The path of the built-in token endpoint.
pub const TOKEN_PATH: &str = "/token";

/// The server's authentication and authorization, made once at start.
pub struct Authorizer {
    flow: Flow,
    htpasswd: Option<Htpasswd>,
    policy: Policy,
    anonymous_read: bool,
    signer: Option<Signer>,
    /// The point tokens are verified with: the signer's own, or an
    /// external token server's (`--token-key`).
    verify_key: Option<Vec<u8>>,
    /// The `iss` tokens carry.
    issuer: String,
    /// Tokens whose signature was checked, with their claims: an ES256
    /// check costs tens of microseconds and a client sends its token with
    /// every request. Expiry and audience are checked on every use.
    verified: Mutex<HashMap<String, Claims>>,
    /// The realm was not given: follow the request's `Host`.
    realm_scheme: Option<&'static str>,
}

/// Whether `h` can stand in a URL's authority and a quoted challenge.
fn plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("flow", &self.flow)
            .field("htpasswd", &self.htpasswd)
            .field("anonymous_read", &self.anonymous_read)
            .finish()
    }
}

/// A request that may not go on: the response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 401 or 403 (400 for a malformed token request).
    pub status: StatusCode,
    /// The `WWW-Authenticate` challenge, on a 401.
    pub challenge: Option<String>,
    /// The spec's error code: `UNAUTHORIZED`, `DENIED`.
    pub code: Code,
    /// What was wrong and what to do.
    pub message: String,
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> ApiError {
        let mut e = ApiError::new(d.code).msg(d.message).status(d.status);
        if let Some(c) = d.challenge {
            e = e.header(header::WWW_AUTHENTICATE, &c);
        }
        e
    }
}

/// Credentials of an `Authorization` header.
enum Presented {
    None,
    Basic { user: String, password: String },
    Bearer(String),
    Malformed,
}

fn presented(headers: &HeaderMap) -> Presented {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Presented::None;
    };
    let Ok(v) = v.to_str() else {
        return Presented::Malformed;
    };
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            // containers/image (skopeo, podman) sends an empty user and
            // password when it has none.
            Some(("", "")) => Presented::None,
            Some((u, p)) => Presented::Basic {
                user: u.to_string(),
                password: p.to_string(),
            },
            None => Presented::Malformed,
        }
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Presented::Bearer(rest.to_string())
    } else {
        Presented::Malformed
    }
}

/// A token response (`GET /token`).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub token: String,
    /// The same, under OAuth2's name.
    pub access_token: String,
    /// Seconds.
    pub expires_in: u64,
    /// RFC 3339.
    pub issued_at: String,
}

impl Authorizer {
    /// Check the options and load the files; every error names the flag or
    /// file and says what to do.
    ///
    /// `scheme` and `local` (the listening `host:port`) make the default
    /// realm; a request naming a `Host` is sent to that host's `/token`
    /// instead, so clients reaching the server by another name (a
    /// published port, a DNS name) are sent where they can follow.
    pub fn new(
        opts: &AuthOptions,
        scheme: &'static str,
        local: &str,
    ) -> Result<Authorizer, AuthError> {
        let default_realm = || format!("{scheme}://{local}{TOKEN_PATH}");
        let issuer = opts
            .token_issuer
            .clone()
            .unwrap_or_else(|| DEFAULT_ISSUER.to_string());
        if let Some(key) = &opts.token_key {
            return Self::external(opts, key, issuer);
        }
        let Some(path) = &opts.htpasswd else {
            for (set, flag) in [
                (opts.access.is_some(), "--access"),
                (opts.anonymous_read, "--anonymous-read"),
                (opts.token_realm.is_some(), "--token-realm"),
                (opts.token_service.is_some(), "--token-service"),
                (opts.token_issuer.is_some(), "--token-issuer"),
                (opts.token_signing_key.is_some(), "--token-signing-key"),
            ] {
                if set {
                    return Err(AuthError::Options(format!(
                        "{flag} needs --htpasswd FILE (the users who may log in)"
                    )));
                }
            }
            return Ok(Authorizer {
                flow: Flow::Open,
                htpasswd: None,
                policy: Policy::default(),
                anonymous_read: true,
                signer: None,
                verify_key: None,
                issuer,
                verified: Mutex::new(HashMap::new()),
                realm_scheme: None,
            });
        };
        let htpasswd = Htpasswd::load(path)?;
        let policy = match &opts.access {
            Some(p) => Policy::load(p, &htpasswd)?,
            None => Policy::default(),
        };
        let token = opts.token_realm.is_some()
            || opts.token_service.is_some()
            || opts.token_issuer.is_some()
            || opts.token_signing_key.is_some();
        let realm_scheme = match &opts.token_realm {
            Some(r) if !r.is_empty() => None,
            _ => Some(scheme),
        };
        let (flow, signer) = if token {
            let realm = match &opts.token_realm {
                Some(r) if r.is_empty() => default_realm(),
                Some(r) => {
                    if !(r.starts_with("https://") || r.starts_with("http://")) {
                        return Err(AuthError::Options(format!(
                            "--token-realm {r:?}: give the URL clients reach this server's token endpoint at, e.g. https://registry.example.com{TOKEN_PATH}"
                        )));
                    }
                    r.clone()
                }
                None => default_realm(),
            };
            let service = opts
                .token_service
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVICE.to_string());
            if service.contains('"') {
                return Err(AuthError::Options(
                    "--token-service must not contain a double quote".into(),
                ));
            }
            let signer = match &opts.token_signing_key {
                Some(k) => Signer::load(k)?,
                None => Signer::new()?,
            };
            (Flow::Token { realm, service }, Some(signer))
        } else {
            (Flow::Basic, None)
        };
        let verify_key = signer
            .as_ref()
            .map(|s| s.pair.public_key().as_ref().to_vec());
        Ok(Authorizer {
            flow,
            htpasswd: Some(htpasswd),
            policy,
            anonymous_read: opts.anonymous_read,
            signer,
            verify_key,
            issuer,
            verified: Mutex::new(HashMap::new()),
            realm_scheme,
        })
    }

    /// `--token-key`: tokens come from an external token server (docker's
    /// token auth spec) at `--token-realm`; this server issues none and
    /// keeps no users: what a token's `access` claim grants is what the
    /// request may do.
    fn external(opts: &AuthOptions, key: &Path, issuer: String) -> Result<Authorizer, AuthError> {
        for (set, flag) in [
            (opts.htpasswd.is_some(), "--htpasswd"),
            (opts.access.is_some(), "--access"),
            (opts.anonymous_read, "--anonymous-read"),
            (opts.token_signing_key.is_some(), "--token-signing-key"),
        ] {
            if set {
                return Err(AuthError::Options(format!(
                    "{flag} does not go with --token-key: the external token server decides who may do what"
                )));
            }
        }
        let realm = match opts.token_realm.as_deref() {
            Some(r) if r.starts_with("https://") || r.starts_with("http://") => r.to_string(),
            _ => {
                return Err(AuthError::Options(
                    "--token-key needs --token-realm URL: the external token server clients get tokens from".into(),
                ))
            }
        };
        let (Some(service), Some(_)) = (&opts.token_service, &opts.token_issuer) else {
            return Err(AuthError::Options(
                "--token-key needs --token-service NAME and --token-issuer NAME: the audience and issuer the external token server writes into its tokens".into(),
            ));
        };
        if service.contains('"') || realm.contains('"') {
            return Err(AuthError::Options(
                "--token-service and --token-realm must not contain a double quote".into(),
            ));
        }
        Ok(Authorizer {
            flow: Flow::Token {
                realm,
                service: service.clone(),
            },
            htpasswd: None,
            policy: Policy::default(),
            anonymous_read: false,
            signer: None,
            verify_key: Some(load_public_key(key)?),
            issuer,
            verified: Mutex::new(HashMap::new()),
            realm_scheme: None,
        })
    }

    /// How clients authenticate.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// Whether authentication may need a slow bcrypt check for these
    /// headers (then call [`Authorizer::authorize`] off the async threads).
    pub fn may_block(&self, headers: &HeaderMap) -> bool {
        self.htpasswd.is_some() && matches!(presented(headers), Presented::Basic { .. })
    }

    /// May this request go on? `Ok(user)` (`None`: anonymous or no
    /// authentication configured), or the response to send.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        need: &[Access],
    ) -> Result<Option<String>, Denial> {
        match &self.flow {
            Flow::Open => Ok(None),
            Flow::Basic => self.authorize_basic(headers, need),
            Flow::Token { realm, service } => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| plain_host(h));
                let realm = match (self.realm_scheme, host) {
                    (Some(scheme), Some(host)) => format!("{scheme}://{host}{TOKEN_PATH}"),
                    _ => realm.clone(),
                };
                self.authorize_bearer(headers, need, &realm, service)
            }
        }
    }

    fn basic_challenge(message: String) -> Denial {
        Denial {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(format!("Basic realm=\"{BASIC_REALM}\"")),
            code: Code::Unauthorized,
            message,
        }
    }

    fn denied(user: &str, missing: &str) -> Denial {
        Denial {
            status: StatusCode::FORBIDDEN,
            challenge: None,
            code: Code::Denied,
            message: format!(
                "requested access to the resource is denied: user {user:?} may not {missing} (ask the registry's administrator to allow it in the --access file)"
            ),
        }
    }

    /// The first action of `need` that `user` (`None`: anonymous) may not
    /// do, as `push on repository "a/b"`.
    fn missing(&self, user: Option<&str>, need: &[Access]) -> Option<String> {
        for a in need {
            match (&a.kind, user) {
                (Resource::Catalog, None) => return Some("list the catalog".into()),
                (Resource::Catalog, Some(u)) => {
                    if !self.policy.allows(u, &a.kind, Action::Pull) {
                        return Some("list the catalog".into());
                    }
                }
                (Resource::Repository(name), _) => {
                    for act in &expand(&a.actions) {
                        let ok = match user {
                            None => self.anonymous_read && *act == Action::Pull,
                            Some(u) => self.policy.allows(u, &a.kind, *act),
                        };
                        if !ok {
                            return Some(format!("{} on repository {name:?}", act.as_str()));
                        }
                    }
                }
            }
        }
        None
    }

    fn authorize_basic(
        &self,
        headers: &HeaderMap,
        need: &[Access],
    ) -> Result<Option<String>, Denial> {
        let htpasswd = self.htpasswd.as_ref().expect("basic flow has users");
        match presented(headers) {
            Presented::Basic { user, password } => {
                if !htpasswd.verify(&user, &password) {
                    return Err(Self::basic_challenge(
                        "incorrect username or password".into(),
                    ));
                }
                match self.missing(Some(&user), need) {
                    None => Ok(Some(user)),
                    Some(m) => Err(Self::denied(&user, &m)),
                }
            }
            Presented::None => {
                // `/v2/` (no access) always asks, so that a client holding
                // credentials learns it should send them.
                if !need.is_empty() && self.missing(None, need).is_none() {
                    return Ok(None);
                }
                Err(Self::basic_challenge("authentication required".into()))
            }
            Presented::Bearer(_) | Presented::Malformed => Err(Self::basic_challenge(
                "this registry takes Basic credentials (berth login / docker login)".into(),
            )),
        }
    }

    fn bearer_challenge(
        realm: &str,
        service: &str,
        need: &[Access],
        error: Option<&str>,
        message: String,
    ) -> Denial {
        let mut c = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
        let scopes: Vec<String> = need.iter().map(|a| a.to_string()).collect();
        if !scopes.is_empty() {
            c.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
        }
        if let Some(e) = error {
            c.push_str(&format!(",error=\"{e}\""));
        }
        Denial {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(c),
            code: Code::Unauthorized,
            message,
        }
    }

    fn authorize_bearer(
        &self,
        headers: &HeaderMap,
        need: &[Access],
        realm: &str,
        service: &str,
    ) -> Result<Option<String>, Denial> {
        let token = match presented(headers) {
            Presented::Bearer(t) => t,
            _ => {
                return Err(Self::bearer_challenge(
                    realm,
                    service,
                    need,
                    None,
                    "authentication required".into(),
                ))
            }
        };
        let claims = match self.verify_token(&token, service) {
            Ok(c) => c,
            Err(why) => {
                return Err(Self::bearer_challenge(
                    realm,
                    service,
                    need,
                    Some("invalid_token"),
                    format!("invalid token: {why}"),
                ))
            }
        };
        if let Some(a) = need.iter().find(|a| !claims.covers(a)) {
            return Err(Self::bearer_challenge(
                realm,
                service,
                need,
                Some("insufficient_scope"),
                format!(
                    "the token does not grant {} (the user may not have this access)",
                    a
                ),
            ));
        }
        Ok((!claims.sub.is_empty()).then_some(claims.sub))
    }

    /// Check a token's signature, algorithm, issuer, audience and times.
    pub fn verify_token(&self, token: &str, service: &str) -> Result<Claims, String> {
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        let claims = match known {
            Some(c) => c,
            None => {
                let c = self.check_signature(token)?;
                let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if v.len() >= KNOWN_GOOD_MAX {
                    let t = now();
                    v.retain(|_, c| c.exp > t);
                    if v.len() >= KNOWN_GOOD_MAX {
                        v.clear();
                    }
                }
                v.insert(token.to_string(), c.clone());
                c
            }
        };
        if claims.iss != self.issuer {
            return Err(format!("issued by {:?}, not {:?}", claims.iss, self.issuer));
        }
        if claims.aud != service {
            return Err(format!(
                "issued for service {:?}, not {service:?}",
                claims.aud
            ));
        }
        let t = now();
        if claims.exp <= t {
            return Err("expired".into());
        }
        if claims.nbf > t + 60 {
            return Err("not valid yet".into());
        }
        Ok(claims)
    }

    /// A token's signature and algorithm; its claims.
    fn check_signature(&self, token: &str) -> Result<Claims, String> {
        let key = self.verify_key.as_ref().ok_or("tokens are not used here")?;
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let dec = |x: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x);
        let header: serde_json::Value = dec(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed header")?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("ES256") {
            return Err("not signed ES256 by this registry".into());
        }
        let sig = dec(s).map_err(|_| "malformed signature")?;
        let public =
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.as_slice());
        public
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| "bad signature (issued by another server, or before a restart)")?;
        let claims: Claims = dec(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed claims")?;
        Ok(claims)
    }

    fn sign(&self, claims: &Claims) -> Result<String, String> {
        let signer = self.signer.as_ref().ok_or("tokens are not used here")?;
        let header = b64(br#"{"typ":"JWT","alg":"ES256"}"#);
        let payload = b64(&serde_json::to_vec(claims).map_err(|e| e.to_string())?);
        let input = format!("{header}.{payload}");
        let sig = signer
            .pair
            .sign(&signer.rng, input.as_bytes())
            .map_err(|e| format!("signing failed: {e}"))?;
        Ok(format!("{input}.{}", b64(sig.as_ref())))
    }

    /// The token endpoint: `params` are the query (GET) or form (POST,
    /// OAuth2's `grant_type=password`) parameters. Grants the asked scopes
    /// as far as the user (or anonymous) may have them; wrong credentials
    /// are a 401. Slow on a first check (bcrypt): call off the async
    /// threads.
    pub fn issue(
        &self,
        headers: &HeaderMap,
        params: &[(String, String)],
    ) -> Result<TokenResponse, Denial> {
        let (Flow::Token { service, .. }, Some(_)) = (&self.flow, &self.signer) else {
            return Err(Denial {
                status: StatusCode::NOT_FOUND,
                challenge: None,
                code: Code::Unsupported,
                message: "this registry issues no tokens (it uses none, or those of the token server its --token-realm names)".into(),
            });
        };
        let bad_request = |message: String| Denial {
            status: StatusCode::BAD_REQUEST,
            challenge: None,
            code: Code::Unsupported,
            message,
        };
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let Some(s) = param("service") {
            if s != service {
                return Err(bad_request(format!(
                    "this token server serves {service:?}, not {s:?}"
                )));
            }
        }
        let htpasswd = self.htpasswd.as_ref().expect("token flow has users");
        let wrong = || Denial {
            status: StatusCode::UNAUTHORIZED,
            challenge: Some(format!("Basic realm=\"{BASIC_REALM}\"")),
            code: Code::Unauthorized,
            message: "incorrect username or password".into(),
        };
        let user = match (param("grant_type"), presented(headers)) {
            (Some("password"), _) => {
                let (Some(u), Some(p)) = (param("username"), param("password")) else {
                    return Err(bad_request(
                        "grant_type=password needs username and password".into(),
                    ));
                };
                if !htpasswd.verify(u, p) {
                    return Err(wrong());
                }
                Some(u.to_string())
            }
            (Some(g), _) => {
                return Err(bad_request(format!(
                "grant_type {g:?} is not supported (use password, or GET with Basic credentials)"
            )))
            }
            (None, Presented::Basic { user, password }) => {
                if !htpasswd.verify(&user, &password) {
                    return Err(wrong());
                }
                Some(user)
            }
            (None, Presented::None) => None,
            (None, _) => return Err(wrong()),
        };
        let mut asked = Vec::new();
        for (k, v) in params {
            if k == "scope" {
                asked.extend(parse_scopes(v).map_err(|e| bad_request(e.to_string()))?);
            }
        }
        let mut access: Vec<ClaimAccess> = Vec::new();
        for a in asked {
            match &a.kind {
                Resource::Catalog => {
                    if self
                        .missing(user.as_deref(), std::slice::from_ref(&a))
                        .is_none()
                    {
                        access.push(ClaimAccess {
                            kind: "registry".into(),
                            name: "catalog".into(),
                            actions: vec!["*".into()],
                        });
                    }
                }
                Resource::Repository(name) => {
                    let granted: Vec<String> = a
                        .actions
                        .iter()
                        .filter(|act| {
                            let one = Access {
                                kind: a.kind.clone(),
                                actions: vec![**act],
                            };
                            self.missing(user.as_deref(), &[one]).is_none()
                        })
                        .map(|act| act.as_str().to_string())
                        .collect();
                    access.push(ClaimAccess {
                        kind: "repository".into(),
                        name: name.clone(),
                        actions: granted,
                    });
                }
            }
        }
        let t = now();
        let mut jti = [0u8; 16];
        ring::rand::SecureRandom::fill(
            &self.signer.as_ref().expect("token flow has a key").rng,
            &mut jti,
        )
        .map_err(|_| bad_request("no randomness for the token id".into()))?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.unwrap_or_default(),
            aud: service.clone(),
            exp: t + TOKEN_LIFETIME.as_secs(),
            nbf: t.saturating_sub(1),
            iat: t,
            jti: hex::encode(jti),
            access,
        };
        let token = self.sign(&claims).map_err(|e| Denial {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            challenge: None,
            code: Code::Unknown,
            message: e,
        })?;
        let issued_at = chrono::DateTime::<chrono::Utc>::from(UNIX_EPOCH + Duration::from_secs(t))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(TokenResponse {
            access_token: token.clone(),
            token,
            expires_in: TOKEN_LIFETIME.as_secs(),
            issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `htpasswd -nbB alice secret` and `-nbB bob hunter2` (apache2-utils
    // 2.4, cost 5), and a `$2b$` and a `$2a$` entry.
    const ALICE: &str = "alice:$2y$05$neZiGH74vqypOrWecHopFun5cRSxWatGl0P0jfvjDhb2cMp58DotS";
    const BOB: &str = "bob:$2y$05$6QfsG6u2Umx/A.mCnPRa0etE80Blz.4b/4JvEeVh7WfLn/3Jabzo6";

    fn file(lines: &[&str]) -> Htpasswd {
        Htpasswd::parse(Path::new("/etc/registry.htpasswd"), &lines.join("\n")).unwrap()
    }

    fn repo(name: &str, actions: &[Action]) -> Access {
        Access {
            kind: Resource::Repository(name.into()),
            actions: actions.to_vec(),
        }
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let c = crate::Credential {
            username: user.into(),
            password: password.into(),
        };
        h.insert(header::AUTHORIZATION, c.basic().parse().unwrap());
        h
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    fn with_users(dir: &Path, opts: AuthOptions, policy: Option<&str>) -> Authorizer {
        let pw = dir.join("htpasswd");
        let h2b = bcrypt::hash_with_result("b2pass", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        std::fs::write(&pw, format!("{ALICE}\n{BOB}\n# ci\ncarol:{h2b}\n")).unwrap();
        let access = policy.map(|p| {
            let f = dir.join("access.toml");
            std::fs::write(&f, p).unwrap();
            f
        });
        Authorizer::new(
            &AuthOptions {
                htpasswd: Some(pw),
                access,
                ..opts
            },
            "http",
            "127.0.0.1:5000",
        )
        .unwrap()
    }

    #[test]
    fn bcrypt_entries_of_each_prefix_verify() {
        let h2a = bcrypt::hash_with_result("x", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoA);
        let h = file(&[ALICE, "", BOB, &format!("dave:{h2a}")]);
        assert!(h.verify("alice", "secret"));
        assert!(
            h.verify("alice", "secret"),
            "from the memory of good checks"
        );
        assert!(!h.verify("alice", "Secret"));
        assert!(h.verify("bob", "hunter2"));
        assert!(!h.verify("bob", "secret"), "alice's password is not bob's");
        assert!(h.verify("dave", "x"));
        assert!(!h.verify("eve", "secret"));
    }

    #[test]
    fn other_hash_kinds_are_refused_naming_the_line() {
        let p = Path::new("/etc/registry.htpasswd");
        for (line, words) in [
            ("md5:$apr1$Vc4Jx1Yh$1KsqDdDK8wdAr2oVPnWxq.", "Apache MD5"),
            ("sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "SHA-1"),
            ("crypt:rl0uEvg4r7xXg", "not a bcrypt hash"),
            ("plain:secret", "not a bcrypt hash"),
        ] {
            let e = Htpasswd::parse(p, &format!("{ALICE}\n\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("/etc/registry.htpasswd line 3: user "), "{e}");
            assert!(e.contains(words) && e.contains("htpasswd -B"), "{e}");
        }
        let e = Htpasswd::parse(p, "alice\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("user:hash"), "{e}");
        let e = Htpasswd::parse(p, "alice:$2y$05$short\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed"), "{e}");
        let e = Htpasswd::parse(p, &format!("{ALICE}\n{ALICE}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let e = Htpasswd::parse(p, "# nobody\n").unwrap_err().to_string();
        assert!(e.contains("no users"), "{e}");
    }

    #[test]
    fn scopes_parse_as_docker_writes_them() {
        assert_eq!(
            parse_scopes("repository:a/b:pull,push").unwrap(),
            vec![repo("a/b", &[Action::Pull, Action::Push])]
        );
        assert_eq!(
            parse_scopes("repository:x:*").unwrap(),
            vec![repo("x", &[Action::Pull, Action::Push, Action::Delete])]
        );
        assert_eq!(
            parse_scopes("registry:catalog:* repository:x:pull").unwrap(),
            vec![
                Access {
                    kind: Resource::Catalog,
                    actions: vec![Action::All]
                },
                repo("x", &[Action::Pull])
            ]
        );
        assert_eq!(
            parse_scopes("repository:x:frob").unwrap(),
            vec![repo("x", &[])]
        );
        for bad in [
            "repository(plugin):x:pull",
            "repository:../etc:pull",
            "repository:A:pull",
            "repository",
            "registry:other:*",
            "image:x:pull",
        ] {
            assert!(parse_scopes(bad).is_err(), "{bad}");
        }
        assert_eq!(
            repo("a/b", &[Action::Pull, Action::Push]).to_string(),
            "repository:a/b:pull,push"
        );
    }

    #[test]
    fn repository_names_follow_the_spec() {
        for ok in [
            "a",
            "a/b",
            "a-b",
            "a--b",
            "a_b",
            "a__b",
            "a.b",
            "x0/y1/z-2.3",
        ] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "..", "a/../b", "a___b", "a.-b", "-a", "a_", "a b", "a:b",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*", "a/b"));
        assert!(glob("team/*", "team/x/y"));
        assert!(!glob("team/*", "teams/x"));
        assert!(glob("a", "a"));
        assert!(!glob("a", "ab"));
        assert!(glob("*/app", "x/app"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcdf"));
    }

    #[test]
    fn open_allows_everything_and_refuses_auth_flags_alone() {
        let a = Authorizer::new(&AuthOptions::default(), "http", "127.0.0.1:5000").unwrap();
        assert_eq!(
            a.authorize(&HeaderMap::new(), &[repo("x", &[Action::Push])]),
            Ok(None)
        );
        let e = Authorizer::new(
            &AuthOptions {
                anonymous_read: true,
                ..Default::default()
            },
            "http",
            "127.0.0.1:5000",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("--anonymous-read needs --htpasswd"),
            "{e}"
        );
    }

    #[test]
    fn basic_flow() {
        let dir = tempfile::tempdir().unwrap();
        let a = with_users(dir.path(), AuthOptions::default(), None);
        let push = [repo("a/b", &[Action::Pull, Action::Push])];
        assert_eq!(
            a.authorize(&basic("alice", "secret"), &push),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            a.authorize(&basic("carol", "b2pass"), &push),
            Ok(Some("carol".into()))
        );
        let d = a.authorize(&basic("alice", "nope"), &push).unwrap_err();
        assert_eq!(d.status, StatusCode::UNAUTHORIZED);
        assert_eq!(d.code, Code::Unauthorized);
        assert_eq!(
            d.challenge.as_deref(),
            Some("Basic realm=\"berth-registry\"")
        );
        let d = a
            .authorize(&HeaderMap::new(), &[repo("a/b", &[Action::Pull])])
            .unwrap_err();
        assert_eq!(d.status, StatusCode::UNAUTHORIZED, "no anonymous reads");
        let d = a.authorize(&HeaderMap::new(), &[]).unwrap_err();
        assert_eq!(d.status, StatusCode::UNAUTHORIZED, "/v2/ asks");
        let d = a.authorize(&bearer("x.y.z"), &push).unwrap_err();
        assert_eq!(d.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn anonymous_read_pulls_only_and_v2_still_challenges() {
        let dir = tempfile::tempdir().unwrap();
        let a = with_users(
            dir.path(),
            AuthOptions {
                anonymous_read: true,
                ..Default::default()
            },
            None,
        );
        assert_eq!(
            a.authorize(&HeaderMap::new(), &[repo("x", &[Action::Pull])]),
            Ok(None)
        );
        // containers/image's way of having no credentials.
        assert_eq!(
            a.authorize(&basic("", ""), &[repo("x", &[Action::Pull])]),
            Ok(None)
        );
        let d = a
            .authorize(
                &HeaderMap::new(),
                &[repo("x", &[Action::Pull, Action::Push])],
            )
            .unwrap_err();
        assert_eq!(d.status, StatusCode::UNAUTHORIZED);
        let catalog = [Access {
            kind: Resource::Catalog,
            actions: vec![Action::All],
        }];
        assert_eq!(
            a.authorize(&HeaderMap::new(), &catalog).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            a.authorize(&basic("bob", "hunter2"), &catalog),
            Ok(Some("bob".into()))
        );
        assert!(a.authorize(&HeaderMap::new(), &[]).is_err());
    }

    const POLICY: &str = r#"
[[allow]]
users = ["alice"]
repositories = ["*"]
actions = ["pull", "push", "delete"]
catalog = true
[[allow]]
users = ["*"]
repositories = ["public/*"]
actions = ["pull"]
"#;

    #[test]
    fn policy_limits_users() {
        let dir = tempfile::tempdir().unwrap();
        let a = with_users(dir.path(), AuthOptions::default(), Some(POLICY));
        let push = [repo("public/x", &[Action::Pull, Action::Push])];
        assert_eq!(
            a.authorize(&basic("alice", "secret"), &push),
            Ok(Some("alice".into()))
        );
        let d = a.authorize(&basic("bob", "hunter2"), &push).unwrap_err();
        assert_eq!((d.status, d.code), (StatusCode::FORBIDDEN, Code::Denied));
        assert!(
            d.message.contains("push on repository \"public/x\""),
            "{}",
            d.message
        );
        assert_eq!(
            a.authorize(
                &basic("bob", "hunter2"),
                &[repo("public/x", &[Action::Pull])]
            ),
            Ok(Some("bob".into()))
        );
        assert!(a
            .authorize(
                &basic("bob", "hunter2"),
                &[repo("private", &[Action::Pull])]
            )
            .is_err());
        let catalog = [Access {
            kind: Resource::Catalog,
            actions: vec![Action::All],
        }];
        assert!(a.authorize(&basic("bob", "hunter2"), &catalog).is_err());
        assert!(a.authorize(&basic("alice", "secret"), &catalog).is_ok());

        let p = dir.path().join("bad.toml");
        let htp = file(&[ALICE]);
        std::fs::write(&p, "[[allow]]\nusers = [\"mallory\"]\n").unwrap();
        let e = Policy::load(&p, &htp).unwrap_err().to_string();
        assert!(e.contains("rule 1") && e.contains("mallory"), "{e}");
        std::fs::write(&p, "[[allow]]\nusers = [\"*\"]\nactions = [\"write\"]\n").unwrap();
        let e = Policy::load(&p, &htp).unwrap_err().to_string();
        assert!(e.contains("unknown action \"write\""), "{e}");
        std::fs::write(&p, "[[allowed]]\n").unwrap();
        assert!(Policy::load(&p, &htp).is_err());
    }

    fn token_params(scopes: &[&str]) -> Vec<(String, String)> {
        let mut p = vec![("service".to_string(), DEFAULT_SERVICE.to_string())];
        p.extend(scopes.iter().map(|s| ("scope".to_string(), s.to_string())));
        p
    }

    #[test]
    fn token_flow_grants_the_intersection() {
        let dir = tempfile::tempdir().unwrap();
        let a = with_users(
            dir.path(),
            AuthOptions {
                token_realm: Some(String::new()),
                anonymous_read: true,
                ..Default::default()
            },
            Some(POLICY),
        );
        assert_eq!(
            a.flow(),
            &Flow::Token {
                realm: "http://127.0.0.1:5000/token".into(),
                service: DEFAULT_SERVICE.into()
            }
        );
        let push = [repo("public/x", &[Action::Pull, Action::Push])];
        // No token: the challenge names realm, service and scope.
        let d = a.authorize(&HeaderMap::new(), &push).unwrap_err();
        assert_eq!(
            d.challenge.as_deref(),
            Some("Bearer realm=\"http://127.0.0.1:5000/token\",service=\"berth-registry\",scope=\"repository:public/x:pull,push\"")
        );

        let t = a
            .issue(
                &basic("alice", "secret"),
                &token_params(&["repository:public/x:pull,push"]),
            )
            .unwrap();
        assert_eq!(t.token, t.access_token);
        assert_eq!(t.expires_in, 300);
        assert_eq!(
            a.authorize(&bearer(&t.token), &push),
            Ok(Some("alice".into()))
        );
        // The token covers only what was asked.
        let other = [repo("public/y", &[Action::Pull])];
        let d = a.authorize(&bearer(&t.token), &other).unwrap_err();
        assert!(d
            .challenge
            .unwrap()
            .ends_with(",error=\"insufficient_scope\""));

        // bob may only pull: his token grants pull, and a push is refused.
        let t = a
            .issue(
                &basic("bob", "hunter2"),
                &token_params(&["repository:public/x:pull,push"]),
            )
            .unwrap();
        let claims = a.verify_token(&t.token, DEFAULT_SERVICE).unwrap();
        assert_eq!(claims.access[0].actions, vec!["pull".to_string()]);
        assert!(a.authorize(&bearer(&t.token), &push).is_err());
        assert_eq!(
            a.authorize(&bearer(&t.token), &[repo("public/x", &[Action::Pull])]),
            Ok(Some("bob".into()))
        );

        // Anonymous (anonymous reads on): pull only, and `/v2/` is fine.
        let t = a
            .issue(
                &HeaderMap::new(),
                &token_params(&["repository:x:pull,push"]),
            )
            .unwrap();
        assert_eq!(a.authorize(&bearer(&t.token), &[]), Ok(None));
        assert_eq!(
            a.authorize(&bearer(&t.token), &[repo("x", &[Action::Pull])]),
            Ok(None)
        );
        assert!(a
            .authorize(&bearer(&t.token), &[repo("x", &[Action::Push])])
            .is_err());

        // Wrong password, a wrong service, a plugin scope.
        let d = a
            .issue(&basic("alice", "nope"), &token_params(&[]))
            .unwrap_err();
        assert_eq!(d.status, StatusCode::UNAUTHORIZED);
        let mut p = token_params(&[]);
        p[0].1 = "elsewhere".into();
        assert_eq!(
            a.issue(&basic("alice", "secret"), &p).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let d = a
            .issue(
                &basic("alice", "secret"),
                &token_params(&["repository(plugin):x:pull"]),
            )
            .unwrap_err();
        assert_eq!(d.status, StatusCode::BAD_REQUEST);

        // OAuth2's password grant.
        let mut p = token_params(&["repository:public/x:push"]);
        p.extend([
            ("grant_type".into(), "password".into()),
            ("username".into(), "alice".into()),
            ("password".into(), "secret".into()),
        ]);
        let t = a.issue(&HeaderMap::new(), &p).unwrap();
        assert!(a
            .authorize(&bearer(&t.token), &[repo("public/x", &[Action::Push])])
            .is_ok());
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let opts = AuthOptions {
            token_realm: Some("https://registry.example.com/token".into()),
            ..Default::default()
        };
        let a = with_users(dir.path(), opts.clone(), None);
        let b = with_users(dir.path(), opts, None);
        let need = [repo("x", &[Action::Pull])];
        let t = a
            .issue(
                &basic("alice", "secret"),
                &token_params(&["repository:x:pull"]),
            )
            .unwrap()
            .token;
        assert!(a.authorize(&bearer(&t), &need).is_ok());
        // Another server's key (or this one's before a restart).
        let d = b.authorize(&bearer(&t), &need).unwrap_err();
        assert!(d.message.contains("bad signature"), "{}", d.message);
        // alg none, with the claims changed.
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert!(a.authorize(&bearer(&none), &need).is_err());
        // A payload edited to grant push keeps the old signature: refused.
        let mut claims: Claims = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap();
        claims.access[0].actions = vec!["*".into()];
        let edited = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert!(a
            .authorize(&bearer(&edited), &[repo("x", &[Action::Push])])
            .is_err());
        // Expired, and for another audience: signed right, still refused.
        claims.exp = now() - 1;
        let d = a
            .authorize(&bearer(&a.sign(&claims).unwrap()), &need)
            .unwrap_err();
        assert!(d.message.contains("expired"), "{}", d.message);
        claims.exp = now() + 60;
        claims.aud = "other".into();
        let d = a
            .authorize(&bearer(&a.sign(&claims).unwrap()), &need)
            .unwrap_err();
        assert!(d.message.contains("service"), "{}", d.message);
        assert!(a.authorize(&bearer("garbage"), &need).is_err());
        // A token seen before is still checked for expiry and audience.
        claims.aud = DEFAULT_SERVICE.into();
        claims.exp = now() + 60;
        let t2 = a.sign(&claims).unwrap();
        assert!(a.authorize(&bearer(&t2), &need).is_ok());
        assert!(a.authorize(&bearer(&t2), &need).is_ok(), "from the memory");
        assert!(a.verify_token(&t2, "other").is_err());
        a.verified.lock().unwrap().get_mut(&t2).unwrap().exp = now() - 1;
        let d = a.authorize(&bearer(&t2), &need).unwrap_err();
        assert!(d.message.contains("expired"), "{}", d.message);
    }

    /// A P-256 key pair made with openssl: (PKCS#8 private PEM, public PEM).
    fn openssl_p256(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = dir.join(format!("{name}.key"));
        let public = dir.join(format!("{name}.pub"));
        let ok = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&key)
            .status()
            .expect("openssl (apt-get install openssl)")
            .success();
        assert!(ok);
        let ok = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        (key, public)
    }

    #[test]
    fn tokens_of_an_external_issuer_are_verified_with_its_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = openssl_p256(dir.path(), "issuer");
        let (_, other_public) = openssl_p256(dir.path(), "other");
        // The issuer: the built-in endpoint, signing with a key on disk.
        let issuer = with_users(
            dir.path(),
            AuthOptions {
                token_realm: Some("http://127.0.0.1:1/token".into()),
                token_service: Some("reg-b".into()),
                token_issuer: Some("issuer-a".into()),
                token_signing_key: Some(key.clone()),
                ..Default::default()
            },
            None,
        );
        let external = |public: &Path, iss: &str| {
            Authorizer::new(
                &AuthOptions {
                    token_realm: Some("http://127.0.0.1:1/token".into()),
                    token_service: Some("reg-b".into()),
                    token_issuer: Some(iss.into()),
                    token_key: Some(public.to_path_buf()),
                    ..Default::default()
                },
                "http",
                "127.0.0.1:5001",
            )
            .unwrap()
        };
        let b = external(&public, "issuer-a");
        let mut params = token_params(&["repository:x:pull,push"]);
        params[0].1 = "reg-b".into();
        let t = issuer
            .issue(&basic("alice", "secret"), &params)
            .unwrap()
            .token;
        let need = [repo("x", &[Action::Pull, Action::Push])];
        assert_eq!(
            b.authorize(&bearer(&t), &need).unwrap().as_deref(),
            Some("alice")
        );
        // No token: the challenge sends clients to the external realm.
        let d = b.authorize(&HeaderMap::new(), &need).unwrap_err();
        assert!(
            d.challenge
                .as_deref()
                .unwrap()
                .starts_with(r#"Bearer realm="http://127.0.0.1:1/token",service="reg-b""#),
            "{d:?}"
        );
        // It issues none itself.
        assert_eq!(
            b.issue(&basic("alice", "secret"), &params)
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        // Beyond the token's access claim: refused.
        let d = b
            .authorize(&bearer(&t), &[repo("y", &[Action::Pull])])
            .unwrap_err();
        assert!(d.challenge.unwrap().contains("insufficient_scope"));
        // Another issuer name, another key, expired, another audience.
        let d = external(&public, "someone-else")
            .authorize(&bearer(&t), &need)
            .unwrap_err();
        assert!(
            d.message.contains("issued by \"issuer-a\""),
            "{}",
            d.message
        );
        let d = external(&other_public, "issuer-a")
            .authorize(&bearer(&t), &need)
            .unwrap_err();
        assert!(d.message.contains("bad signature"), "{}", d.message);
        let parts: Vec<&str> = t.split('.').collect();
        let mut claims: Claims = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap();
        claims.exp = now() - 1;
        let d = b
            .authorize(&bearer(&issuer.sign(&claims).unwrap()), &need)
            .unwrap_err();
        assert!(d.message.contains("expired"), "{}", d.message);
        claims.exp = now() + 60;
        claims.nbf = now() + 3600;
        let d = b
            .authorize(&bearer(&issuer.sign(&claims).unwrap()), &need)
            .unwrap_err();
        assert!(d.message.contains("not valid yet"), "{}", d.message);
        claims.nbf = now();
        claims.aud = "reg-c".into();
        let d = b
            .authorize(&bearer(&issuer.sign(&claims).unwrap()), &need)
            .unwrap_err();
        assert!(d.message.contains("service"), "{}", d.message);
        // Options: what does not fit is refused naming the flags.
        let bad = |o: AuthOptions| Authorizer::new(&o, "http", "x:1").unwrap_err().to_string();
        let base = AuthOptions {
            token_realm: Some("http://127.0.0.1:1/token".into()),
            token_service: Some("reg-b".into()),
            token_issuer: Some("issuer-a".into()),
            token_key: Some(public.clone()),
            ..Default::default()
        };
        let e = bad(AuthOptions {
            token_key: Some(key.clone()),
            ..base.clone()
        });
        assert!(e.starts_with("--token-key "), "{e}");
        let e = bad(AuthOptions {
            token_issuer: None,
            ..base.clone()
        });
        assert!(e.contains("--token-issuer"), "{e}");
        let e = bad(AuthOptions {
            htpasswd: Some(key.clone()),
            ..base.clone()
        });
        assert!(e.contains("--htpasswd does not go with --token-key"), "{e}");
        let e = bad(AuthOptions {
            token_realm: None,
            ..base
        });
        assert!(e.contains("needs --token-realm"), "{e}");
    }
}
