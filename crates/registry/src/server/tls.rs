//! HTTPS for `berth registry serve --tls-cert FILE --tls-key FILE`: rustls
//! (ring provider, TLS 1.2 and 1.3, as `berth serve --tls` and the registry
//! client), the certificate chain and key from PEM files; each connection
//! does its handshake in its own task ([`super::listen`]), bounded in
//! time, so a slow or hostile client holds up nobody else.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why the certificate or key cannot be used; the message names the flag
/// and the file.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {path}: {reason}")]
pub struct TlsError {
    /// `--tls-cert` or `--tls-key`.
    pub flag: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong and what to do.
    pub reason: String,
}

/// Read the PEM files and build the acceptor.
pub fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let err = |flag, path: &Path, reason: String| TlsError {
        flag,
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err("--tls-cert", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(err(
            "--tls-cert",
            cert,
            "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        err(
            "--tls-key",
            key,
            format!("{e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("--tls-cert", cert, format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            err(
                "--tls-key",
                key,
                format!(
                    "does not go with --tls-cert {}: {e} (give the key the certificate was made for)",
                    cert.display()
                ),
            )
        })?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS handshake of a connection accepted by [`super::listen`],
/// bounded by [`HANDSHAKE`]; `None` (logged) when it fails or times out.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(HANDSHAKE, acceptor.accept(sock)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            log_handshake_error(peer, &e.to_string());
            None
        }
        Err(_) => {
            log_handshake_error(
                peer,
                &format!("no handshake within {} s", HANDSHAKE.as_secs()),
            );
            None
        }
    }
}

fn log_handshake_error(peer: SocketAddr, reason: &str) {
    let line = serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "msg": "TLS handshake failed",
        "remote": peer.to_string(),
        "error": reason,
    });
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_empty_and_mismatched_files_name_the_flag() {
        crate::client::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = load(&dir.path().join("nope.pem"), &empty)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("--tls-cert ") && e.contains("nope.pem"),
            "{e}"
        );
        let e = load(&empty, &empty).err().unwrap().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");

        // Two self-signed pairs (openssl), then the key of the other one.
        let mk = |n: &str| {
            let ok = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=127.0.0.1",
                ])
                .arg("-keyout")
                .arg(dir.path().join(format!("{n}.key")))
                .arg("-out")
                .arg(dir.path().join(format!("{n}.crt")))
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl (apt-get install openssl)")
                .success();
            assert!(ok);
        };
        mk("a");
        mk("b");
        let p = |f: &str| dir.path().join(f);
        load(&p("a.crt"), &p("a.key")).unwrap();
        let e = load(&p("a.crt"), &empty).err().unwrap().to_string();
        assert!(e.starts_with("--tls-key "), "{e}");
        let e = load(&p("a.crt"), &p("a.crt")).err().unwrap().to_string();
        assert!(e.starts_with("--tls-key "), "{e}");
        let e = load(&p("a.crt"), &p("b.key")).err().unwrap().to_string();
        assert!(e.contains("does not go with --tls-cert"), "{e}");
    }
}
