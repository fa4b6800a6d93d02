//! Credentials (docker-compatible `config.json`) and the
//! `WWW-Authenticate` challenges of the distribution auth flow.
//!
//! `login` writes `<berth config dir>/config.json` (`{"auths": {host:
//! {"auth": base64("user:password")}}}`, mode 0600, written atomically);
//! lookups read it first, then Docker's (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`). Docker Hub's key is Docker's
//! `https://index.docker.io/v1/`. A file's `credHelpers` (per registry) or
//! `credsStore` (for all) names a Docker credential helper,
//! `docker-credential-NAME` in `PATH`, asked first (`get`; `store` at
//! login and `erase` at logout when it is in our file), as Docker does.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::RegistryError;

/// The key Docker uses for Docker Hub in `auths`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ***)", self.username)
    }
}

impl Credential {
    /// `Basic …` header value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The `auths` key of a registry host.
pub fn key_for(host: &str) -> String {
    if host == model::reference::DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// Normalise an `auths` key (`https://host/v1/`, `host`) to a host.
fn host_of_key(key: &str) -> &str {
    if key == DOCKER_HUB_KEY {
        return model::reference::DEFAULT_REGISTRY;
    }
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => model::reference::DEFAULT_REGISTRY,
        _ => k,
    }
}

/// Credentials files, ours first.
#[derive(Debug, Clone)]
pub struct Credentials {
    ours: PathBuf,
    others: Vec<PathBuf>,
    /// A credential given for one host with the request (the Docker API's
    /// `X-Registry-Auth`), asked before the files.
    given: Option<(String, Credential)>,
}

impl Credentials {
    /// Ours in `config_dir`, and Docker's.
    pub fn new(config_dir: &Path) -> Credentials {
        let mut others = Vec::new();
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            others.push(PathBuf::from(d).join("config.json"));
        } else if let Some(h) = std::env::var_os("HOME") {
            others.push(PathBuf::from(h).join(".docker/config.json"));
        }
        Credentials {
            ours: config_dir.join("config.json"),
            others,
            given: None,
        }
    }

    /// Only `path` (tests).
    pub fn only(path: &Path) -> Credentials {
        Credentials {
            ours: path.to_path_buf(),
            others: Vec::new(),
            given: None,
        }
    }

    /// These credentials, with `c` used for `host` whatever the files say.
    pub fn with_given(mut self, host: &str, c: Credential) -> Credentials {
        self.given = Some((host_of_key(host).to_string(), c));
        self
    }

    /// The file `login` writes.
    pub fn path(&self) -> &Path {
        &self.ours
    }

    /// Credentials for `host`, if any file (or its credential helper) has
    /// them.
    pub fn get(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some((h, c)) = &self.given {
            if h == host {
                return Ok(Some(c.clone()));
            }
        }
        for p in std::iter::once(&self.ours).chain(&self.others) {
            let doc = read(p)?;
            if let Some(helper) = helper_for(&doc, host) {
                if let Some(c) = helper_get(p, &helper, host)? {
                    return Ok(Some(c));
                }
            }
            let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
                continue;
            };
            for (k, v) in auths {
                if host_of_key(k) != host {
                    continue;
                }
                if let Some(c) = decode_entry(v).map_err(|reason| RegistryError::Config {
                    path: p.clone(),
                    reason: format!("auths[{k:?}]: {reason}"),
                })? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Save credentials for `host` in our file.
    pub fn save(&self, host: &str, c: &Credential) -> Result<(), RegistryError> {
        let mut doc = read(&self.ours)?;
        let auths = doc
            .as_object_mut()
            .ok_or_else(|| RegistryError::Config {
                path: self.ours.clone(),
                reason: "not a JSON object".into(),
            })?
            .entry("auths")
            .or_insert_with(|| serde_json::json!({}));
        let Some(auths) = auths.as_object_mut() else {
            return Err(RegistryError::Config {
                path: self.ours.clone(),
                reason: "\"auths\" is not an object".into(),
            });
        };
        auths.retain(|k, _| host_of_key(k) != host);
        let entry = match helper_for(&doc, host) {
            // In the helper's store; the file only says the registry has a
            // login (as Docker's does).
            Some(helper) => {
                let input = serde_json::json!({
                    "ServerURL": key_for(host),
                    "Username": c.username,
                    "Secret": c.password,
                });
                run_helper(&self.ours, &helper, "store", input.to_string().as_bytes())?;
                serde_json::json!({})
            }
            None => {
                let raw = format!("{}:{}", c.username, c.password);
                serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(raw) })
            }
        };
        // The borrow of `auths` ends above: look it up again.
        if let Some(auths) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) {
            auths.insert(key_for(host), entry);
        }
        write(&self.ours, &doc)
    }

    /// Remove `host` from our file. Returns whether it was there.
    pub fn remove(&self, host: &str) -> Result<bool, RegistryError> {
        let mut doc = read(&self.ours)?;
        if let Some(helper) = helper_for(&doc, host) {
            // Not there is fine: logout of a registry without a login.
            let _ = run_helper(&self.ours, &helper, "erase", key_for(host).as_bytes());
        }
        let Some(auths) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|k, _| host_of_key(k) != host);
        if auths.len() == before {
            return Ok(false);
        }
        write(&self.ours, &doc)?;
        Ok(true)
    }
}

/// The credential helper a config file names for `host`: its
/// `credHelpers` entry, else its `credsStore`.
fn helper_for(doc: &serde_json::Value, host: &str) -> Option<String> {
    let per_host = doc
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(k, _)| host_of_key(k) == host))
        .and_then(|(_, v)| v.as_str());
    per_host
        .or_else(|| doc.get("credsStore").and_then(|s| s.as_str()))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// Run `docker-credential-NAME ACTION` with `input` on stdin; its stdout.
fn run_helper(
    config: &Path,
    name: &str,
    action: &str,
    input: &[u8],
) -> Result<Vec<u8>, RegistryError> {
    let err = |reason: String| RegistryError::Config {
        path: config.to_path_buf(),
        reason,
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(err(format!(
            "credential helper {name:?}: not a helper name"
        )));
    }
    let program = format!("docker-credential-{name}");
    let mut child = std::process::Command::new(&program)
        .arg(action)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(format!(
                "credential helper {program}: {e} (install it, or remove credsStore/credHelpers)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("credential helper {program}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(err(format!("{program} {action}: {text}")));
    }
    Ok(out.stdout)
}

/// A helper's credentials for `host` (none if it has none).
fn helper_get(config: &Path, name: &str, host: &str) -> Result<Option<Credential>, RegistryError> {
    let out = match run_helper(config, name, "get", key_for(host).as_bytes()) {
        Ok(o) => o,
        // The helpers' own words for "nothing stored for this server".
        Err(RegistryError::Config { reason, .. }) if reason.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| RegistryError::Config {
        path: config.to_path_buf(),
        reason: format!("docker-credential-{name} get: not JSON: {e}"),
    })?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        // An identity (refresh) token, from a login flow berth lacks.
        (Some("<token>"), _) => Ok(None),
        (Some(u), Some(s)) if !s.is_empty() => Ok(Some(Credential {
            username: u.to_string(),
            password: s.to_string(),
        })),
        _ => Ok(None),
    }
}

fn read(p: &Path) -> Result<serde_json::Value, RegistryError> {
    match std::fs::read(p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(serde_json::json!({})),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| RegistryError::Config {
            path: p.to_path_buf(),
            reason: format!("not valid JSON: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(RegistryError::Config {
            path: p.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn write(p: &Path, doc: &serde_json::Value) -> Result<(), RegistryError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| RegistryError::Config {
        path: p.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let mut text = serde_json::to_vec_pretty(doc).unwrap_or_default();
    text.push(b'\n');
    f.write_all(&text).and_then(|_| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, p).map_err(err)
}

fn decode_entry(v: &serde_json::Value) -> Result<Option<Credential>, String> {
    if let Some(a) = v
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|e| format!("\"auth\" is not base64: {e}"))?;
        let s = String::from_utf8(raw).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| "\"auth\" is not user:password".to_string())?;
        return Ok(Some(Credential {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    match (
        v.get("username").and_then(|u| u.as_str()),
        v.get("password").and_then(|p| p.as_str()),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credential {
            username: u.to_string(),
            password: p.to_string(),
        })),
        _ => Ok(None),
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic.
    Basic,
    /// Token server flow.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter.
        service: Option<String>,
        /// `scope` the registry asked for.
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value (one challenge; params may be quoted).
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = get("realm").filter(|r| !r.is_empty())?;
        Some(Challenge::Bearer {
            realm,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    out
}

/// The token endpoint's answer.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
}

/// Tokens by scope.
pub(crate) type TokenCache = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_credential_wins_for_its_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let saved = Credential {
            username: "saved".into(),
            password: "s".into(),
        };
        let given = Credential {
            username: "given".into(),
            password: "g".into(),
        };
        let creds = Credentials::only(&dir.path().join("config.json"));
        creds.save("a.test:5000", &saved).unwrap();
        creds.save("b.test", &saved).unwrap();
        let creds = creds.with_given("a.test:5000", given.clone());
        assert_eq!(creds.get("a.test:5000").unwrap(), Some(given.clone()));
        assert_eq!(creds.get("b.test").unwrap(), Some(saved));
        // Docker Hub's key names docker.io.
        let hub = Credentials::only(&dir.path().join("none.json"))
            .with_given(DOCKER_HUB_KEY, given.clone());
        assert_eq!(hub.get("docker.io").unwrap(), Some(given));
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://127.0.0.1:1/t, scope="a:b:pull,push""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: Some("a:b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn config_json_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let c = Credentials::only(&d.path().join("config.json"));
        assert_eq!(c.get("127.0.0.1:5000").unwrap(), None);
        let cred = Credential {
            username: "alice".into(),
            password: "s3:cr3t".into(),
        };
        c.save("127.0.0.1:5000", &cred).unwrap();
        c.save("docker.io", &cred).unwrap();
        assert_eq!(c.get("127.0.0.1:5000").unwrap(), Some(cred.clone()));
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(c.path()).unwrap()).unwrap();
        assert_eq!(
            doc["auths"]["127.0.0.1:5000"]["auth"],
            "YWxpY2U6czM6Y3IzdA=="
        );
        assert!(doc["auths"][DOCKER_HUB_KEY]["auth"].is_string());
        assert_eq!(c.get("docker.io").unwrap(), Some(cred));
        assert!(c.remove("127.0.0.1:5000").unwrap());
        assert!(!c.remove("127.0.0.1:5000").unwrap());
        assert_eq!(c.get("127.0.0.1:5000").unwrap(), None);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn credential_helpers_per_registry_then_for_all() {
        let doc = serde_json::json!({
            "credsStore": "secretservice",
            "credHelpers": {"https://gcr.io": "gcloud", "127.0.0.1:5000": ""},
        });
        assert_eq!(helper_for(&doc, "gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(
            helper_for(&doc, "quay.io").as_deref(),
            Some("secretservice")
        );
        assert_eq!(helper_for(&serde_json::json!({}), "quay.io"), None);
        let err = run_helper(Path::new("c.json"), "../evil", "get", b"x").unwrap_err();
        assert!(err.to_string().contains("not a helper name"), "{err}");
    }

    #[test]
    fn docker_style_keys_are_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"dTpw"},"x.io":{"username":"a","password":"b"}}}"#,
        )
        .unwrap();
        let c = Credentials::only(&p);
        assert_eq!(c.get("reg.example:5000").unwrap().unwrap().username, "u");
        assert_eq!(c.get("x.io").unwrap().unwrap().password, "b");
        std::fs::write(&p, r#"{"auths":{"x.io":{"auth":"!!"}}}"#).unwrap();
        assert!(c.get("x.io").is_err());
    }
}
