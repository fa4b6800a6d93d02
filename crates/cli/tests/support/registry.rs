//! A docker-registry on a free loopback port with htpasswd users, for the
//! tests that push and pull; certificates for TLS registries; a TLS
//! registry whose bearer tokens come from a token server of the test's
//! (included with `#[path]`).
#![allow(dead_code)]
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A docker-registry on a free loopback port, with htpasswd users.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(user: &str, pass: &str) -> Registry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is needed: apt-get install docker-registry (scripts/deps does)"
        );
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, pass])
            .output()
            .expect("htpasswd (apt-get install apache2-utils)");
        assert!(htpasswd.status.success());
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "no registry");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// ca.crt, and server.crt/key for 127.0.0.1 signed by it.
pub fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: &str, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The token server: answers every GET with the token in `token` and
/// appends `PATH AUTHORIZATION` of each request to `log`; over TLS with
/// the given certificate, or plain HTTP when it is `-`.
pub const TOKEN_SERVER: &str = r#"
import http.server, ssl, sys
port, log, token, cert, key = sys.argv[1:6]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, 'a') as f:
            f.write('%s %s\n' % (self.path, self.headers.get('Authorization')))
        body = ('{"token": "%s"}' % open(token).read().strip()).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', int(port)), H)
if cert != '-':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

/// docker-registry over TLS (a certificate for 127.0.0.1 signed by a fresh
/// CA, `ca()`) with token authentication: its bearer challenge names the
/// realm of a token server on 127.0.0.1, plain HTTP or HTTPS (the same
/// certificate). The tokens are JWTs signed by a key the registry trusts,
/// granting pull and push on every repository.
pub struct TokenRegistry {
    registry: Child,
    token_server: Child,
    pub addr: String,
    /// The realm the challenge names.
    pub realm: String,
    dir: tempfile::TempDir,
}

impl TokenRegistry {
    pub fn start(https_realm: bool) -> TokenRegistry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is needed: apt-get install docker-registry (scripts/deps does)"
        );
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let d = dir.path();
        make_certs(d);
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.crt",
                "-days",
                "2",
                "-subj",
                "/CN=berth test token issuer",
            ],
        );
        std::fs::write(d.join("token"), jwt(d)).unwrap();
        std::fs::write(d.join("token.log"), "").unwrap();
        let tport = free_port();
        let scheme = if https_realm { "https" } else { "http" };
        let realm = format!("{scheme}://127.0.0.1:{tport}/token");
        let (cert, key) = if https_realm {
            (d.join("server.crt"), d.join("server.key"))
        } else {
            ("-".into(), "-".into())
        };
        let token_server = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(TOKEN_SERVER)
            .arg(tport.to_string())
            .arg(d.join("token.log"))
            .arg(d.join("token"))
            .arg(cert)
            .arg(key)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 (the token server)");
        let addr = format!("127.0.0.1:{}", free_port());
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\nauth:\n  token:\n    realm: {realm}\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {d}/token.crt\n",
            data = d.join("data").display(),
            d = d.display(),
        );
        std::fs::write(d.join("config.yml"), cfg).unwrap();
        let registry = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let r = TokenRegistry {
            registry,
            token_server,
            addr,
            realm,
            dir,
        };
        wait_listening(&r.addr, "docker-registry");
        wait_listening(&format!("127.0.0.1:{tport}"), "the token server");
        r
    }

    /// The CA that signed the registry's (and an https token server's)
    /// certificate.
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// `PATH AUTHORIZATION` of each request the token server got.
    pub fn token_requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("token.log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        for c in [&mut self.registry, &mut self.token_server] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A token docker-registry takes (distribution's `token` auth): RS256,
/// signed by `token.key`, its certificate in the header's `x5c`.
fn jwt(dir: &Path) -> String {
    jwt_granting(
        dir,
        serde_json::json!([{"type": "repository", "name": "t/app", "actions": ["pull", "push"]}]),
    )
}

/// As [`jwt`], granting `access` (the claim's list of
/// `{"type", "name", "actions"}`).
pub fn jwt_granting(dir: &Path, access: serde_json::Value) -> String {
    use base64::Engine;
    let pem = std::fs::read_to_string(dir.join("token.crt")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let header = serde_json::json!({
        "alg": "RS256",
        "typ": "JWT",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "berth-test-issuer",
        "sub": "u",
        "aud": "berth-test-registry",
        "exp": now + 86400,
        "nbf": now - 600,
        "iat": now - 600,
        "jti": "berth-test",
        "access": access,
    });
    let signed = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    std::fs::write(dir.join("jwt.in"), &signed).unwrap();
    let o = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sign",
            "token.key",
            "-out",
            "jwt.sig",
            "jwt.in",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl dgst: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sig = std::fs::read(dir.join("jwt.sig")).unwrap();
    format!("{signed}.{}", b64url(&sig))
}
