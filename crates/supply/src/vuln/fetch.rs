//! Downloading OSV archives for `berth scan db update`: osv.dev publishes
//! one zip per ecosystem, `<base>/<Ecosystem>/all.zip`; a mirror keeps the
//! same layout. Each archive goes to a file in the scratch directory, bounded
//! in size and with an idle timeout, and only a complete set is imported.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::db::DbError;

/// Where osv.dev publishes its archives.
pub const OSV_BASE: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// The ecosystems downloaded when none are named.
pub const DEFAULT_ECOSYSTEMS: [&str; 6] = ["Debian", "Alpine", "PyPI", "npm", "Go", "crates.io"];
/// The largest archive taken (osv.dev's largest, Debian's, is a few hundred MB).
pub const MAX_ARCHIVE: u64 = 4 << 30;

fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The archive URLs for `from` (a base URL, or one `.zip` URL) and
/// `ecosystems`.
pub fn archive_urls(from: Option<&str>, ecosystems: &[String]) -> Vec<String> {
    let base = from.unwrap_or(OSV_BASE).trim_end_matches('/');
    if base.ends_with(".zip") {
        return vec![base.to_string()];
    }
    let ecos: Vec<String> = if ecosystems.is_empty() {
        DEFAULT_ECOSYSTEMS.iter().map(|e| e.to_string()).collect()
    } else {
        ecosystems.to_vec()
    };
    ecos.iter().map(|e| format!("{base}/{e}/all.zip")).collect()
}

/// Download each of `urls` into `dir`; the files, in order.
pub fn download_all(urls: &[String], dir: &Path) -> Result<Vec<PathBuf>, DbError> {
    install_crypto();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DbError::Download {
            url: urls.join(", "),
            reason: format!("cannot set up an HTTP client: {e}"),
        })?;
    let mut out = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let fail = |reason: String| DbError::Download {
            url: url.clone(),
            reason,
        };
        let mut resp = client.get(url).send().map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the server answered {}", resp.status())));
        }
        if resp.content_length().is_some_and(|n| n > MAX_ARCHIVE) {
            return Err(fail(format!("more than {MAX_ARCHIVE} bytes")));
        }
        let path = dir.join(format!("{i}.zip"));
        let mut f = std::fs::File::create(&path).map_err(|e| DbError::Io {
            what: "writing",
            path: path.clone(),
            source: e,
        })?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = resp
                .read(&mut buf)
                .map_err(|e| fail(format!("reading the answer: {e}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_ARCHIVE {
                return Err(fail(format!("more than {MAX_ARCHIVE} bytes")));
            }
            f.write_all(&buf[..n]).map_err(|e| DbError::Io {
                what: "writing",
                path: path.clone(),
                source: e,
            })?;
        }
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_from_a_base_or_one_archive() {
        assert_eq!(
            archive_urls(None, &["PyPI".into()]),
            [format!("{OSV_BASE}/PyPI/all.zip")]
        );
        assert_eq!(archive_urls(Some("http://127.0.0.1:1/m/"), &[]).len(), 6);
        assert_eq!(
            archive_urls(Some("http://127.0.0.1:1/x.zip"), &["npm".into()]),
            ["http://127.0.0.1:1/x.zip"]
        );
    }
}
