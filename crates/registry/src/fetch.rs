//! Plain HTTP(S) downloads for `ADD <url>` in builds: the same client
//! setup as registry traffic (rustls with the system roots), redirects
//! followed, the body streamed to a writer. The client (and its runtime
//! thread) is gone when this returns, so the caller can fork again.
use std::io::Write;
use std::time::Duration;

use crate::RegistryError;

/// What a download brought.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Bytes written.
    pub size: u64,
    /// The `Last-Modified` header, as given.
    pub last_modified: Option<String>,
}

/// Download `url` into `out`, at most `limit` bytes; a server that sends
/// nothing for `idle` fails it ([`crate::Config::idle_timeout`]).
pub fn fetch(
    url: &str,
    out: &mut dyn Write,
    limit: u64,
    idle: Duration,
) -> Result<Fetched, RegistryError> {
    crate::client::install_crypto_provider();
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or(url)
        .to_string();
    let connect = |reason: String| RegistryError::Connect {
        host: host.clone(),
        reason,
    };
    let stalled = || RegistryError::Stalled {
        peer: "server",
        host: host.clone(),
        secs: idle.as_secs(),
        sending: false,
    };
    let client = crate::client::idle_bounded(reqwest::blocking::Client::builder(), idle)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| connect(format!("cannot set up an HTTP client: {e}")))?;
    let mut resp = client
        .get(url)
        .send()
        .map_err(|e| match crate::client::stalled(&e) {
            Some(_) => stalled(),
            None => connect(e.to_string()),
        })?;
    if !resp.status().is_success() {
        return Err(connect(format!("GET {url}: HTTP {}", resp.status())));
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n =
            std::io::Read::read(&mut resp, &mut buf).map_err(
                |e| match crate::client::stalled_read(&e) {
                    Some(()) => stalled(),
                    None => connect(e.to_string()),
                },
            )?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(connect(format!("{url}: larger than {limit} bytes")));
        }
        out.write_all(&buf[..n])
            .map_err(|e| connect(format!("writing the download: {e}")))?;
    }
    drop(resp);
    drop(client);
    Ok(Fetched {
        size,
        last_modified,
    })
}
