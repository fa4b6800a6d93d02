//! TLS on the TCP listeners, as dockerd's `--tls` and `--tlsverify`:
//! rustls (ring provider, TLS 1.2 and 1.3), the server's certificate chain
//! and key from PEM files, and with `--tlsverify` client certificates
//! required and verified against `--tlscacert` alone (dockerd's
//! `ExclusiveRootPools`: the system's roots are not trusted for clients).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The files `--tlscert`, `--tlskey` (and `--tlscacert`) name.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Which clients may connect.
    pub clients: ClientAuth,
}

/// Which clients a TLS listener accepts.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `--tls` alone: any client; the connection is encrypted and the
    /// server authenticated, but whoever reaches the port controls the host.
    Any,
    /// `--tlsverify`: only clients presenting a certificate signed by the
    /// CA(s) in this PEM file (`--tlscacert`).
    SignedBy(PathBuf),
}

/// A loaded TLS setup: what accepts connections, and whether it checks
/// who the clients are.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) verifies_clients: bool,
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

impl Tls {
    /// Read the files and build the server configuration; every error
    /// names the flag and the file.
    pub(crate) fn load(files: &TlsFiles) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certs(&files.cert, "--tlscert")?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| format!("--tlskey {}: {e}", files.key.display()))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let (builder, verifies_clients) = match &files.clients {
            ClientAuth::Any => (builder.with_no_client_auth(), false),
            ClientAuth::SignedBy(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs(ca, "--tlscacert")? {
                    roots
                        .add(c)
                        .map_err(|e| format!("--tlscacert {}: {e}", ca.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| format!("--tlscacert {}: {e}", ca.display()))?;
                (builder.with_client_cert_verifier(verifier), true)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            format!(
                "--tlscert {} with --tlskey {}: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
        // The API is HTTP/1.1 (attach and exec upgrade the connection).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            verifies_clients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let files = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: empty.clone(),
            clients: ClientAuth::Any,
        };
        let e = Tls::load(&files).err().unwrap();
        assert!(e.starts_with("--tlscert ") && e.contains("nope.pem"), "{e}");
        let files = TlsFiles {
            cert: empty.clone(),
            ..files
        };
        let e = Tls::load(&files).err().unwrap();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
