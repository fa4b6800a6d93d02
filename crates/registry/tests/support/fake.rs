//! An in-process registry on 127.0.0.1 that can misbehave on purpose.
//! HTTP/1.1, one thread per connection, `Connection: close` on every
//! answer. Shared by the registry crate's tests and the CLI's.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .get(&k.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What to answer.
pub enum Resp {
    /// A complete answer.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Headers announcing `body.len()` bytes, then only `keep` bytes of
    /// the body, then the connection closes.
    Cut {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        keep: usize,
    },
    /// Like `Cut`, but the connection then hangs (until the fake drops).
    Stall {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        keep: usize,
    },
    /// Headers, then the body `piece` bytes at a time with `every`
    /// between pieces (a trickling or merely slow server).
    Trickle {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        piece: usize,
        every: std::time::Duration,
    },
}

impl Resp {
    pub fn status(status: u16) -> Resp {
        Resp::Full {
            status,
            headers: vec![],
            body: vec![],
        }
    }
    pub fn json(status: u16, body: &str) -> Resp {
        Resp::Full {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Resp {
        match &mut self {
            Resp::Full { headers, .. }
            | Resp::Cut { headers, .. }
            | Resp::Stall { headers, .. }
            | Resp::Trickle { headers, .. } => headers.push((k.into(), v.into())),
        }
        self
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A running fake server.
pub struct Fake {
    pub addr: String,
    pub log: Arc<Mutex<Vec<Req>>>,
    /// Body bytes sent, by request path.
    pub sent: Arc<Mutex<HashMap<String, u64>>>,
    handler: Arc<Mutex<Arc<Handler>>>,
}

impl Fake {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(HashMap::new()));
        let handler: Arc<Mutex<Arc<Handler>>> = Arc::new(Mutex::new(Arc::new(handler)));
        let (log2, sent2, h2) = (log.clone(), sent.clone(), handler.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (log, sent, h) = (log2.clone(), sent2.clone(), h2.clone());
                std::thread::spawn(move || {
                    let _ = serve(s, &log, &sent, &h);
                });
            }
        });
        Fake {
            addr,
            log,
            sent,
            handler,
        }
    }

    /// Replace the behaviour.
    pub fn set(&self, handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn sent_for(&self, path_suffix: &str) -> u64 {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(path_suffix))
            .map(|(_, n)| *n)
            .sum()
    }
}

fn serve(
    s: TcpStream,
    log: &Mutex<Vec<Req>>,
    sent: &Mutex<HashMap<String, u64>>,
    handler: &Mutex<Arc<Handler>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    // An upload to a path naming `stall-upload` is never read: a server
    // that stops taking a push.
    if path.contains("/stall-upload") && method != "POST" {
        std::thread::sleep(std::time::Duration::from_secs(120));
        return Ok(());
    }
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        loop {
            let mut sz = String::new();
            r.read_line(&mut sz)?;
            let n = usize::from_str_radix(sz.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let req = Req {
        method,
        path: path.clone(),
        headers,
        body,
    };
    log.lock().unwrap().push(req.clone());
    let h = handler.lock().unwrap().clone();
    let resp = h(&req);
    let mut w = s;
    let mut trickle = None;
    let (status, headers, body, keep, stall) = match resp {
        Resp::Full {
            status,
            headers,
            body,
        } => {
            let n = body.len();
            (status, headers, body, n, false)
        }
        Resp::Trickle {
            status,
            headers,
            body,
            piece,
            every,
        } => {
            trickle = Some((piece.max(1), every));
            (status, headers, body, 0, false)
        }
        Resp::Cut {
            status,
            headers,
            body,
            keep,
        } => (status, headers, body, keep, false),
        Resp::Stall {
            status,
            headers,
            body,
            keep,
        } => (status, headers, body, keep, true),
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    let has_len = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        let keep = keep.min(body.len());
        w.write_all(&body[..keep])?;
        w.flush()?;
        *sent.lock().unwrap().entry(path.clone()).or_default() += keep as u64;
        if let Some((piece, every)) = trickle {
            for chunk in body.chunks(piece) {
                std::thread::sleep(every);
                w.write_all(chunk)?;
                w.flush()?;
                *sent.lock().unwrap().entry(path.clone()).or_default() += chunk.len() as u64;
            }
        }
        if stall {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    Ok(())
}

/// An image to serve: layer blobs (gzip), config, manifest.
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

pub fn sha(b: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

impl TestImage {
    /// `n` layers, each with a file `/layer<i>` of `size` pseudo-random bytes.
    pub fn new(n: usize, size: usize, arch: &str) -> TestImage {
        TestImage::from_tars(data_layers(n, size, arch), arch)
    }

    /// An image of these (uncompressed) layer tars, gzipped.
    pub fn from_tars(tars: Vec<Vec<u8>>, arch: &str) -> TestImage {
        let mut layers = Vec::new();
        let mut diffs = Vec::new();
        for tar in tars {
            diffs.push(sha(&tar));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            layers.push(gz.finish().unwrap());
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diffs},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(&config), "size": config.len()},
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(l), "size": l.len()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        TestImage {
            layers,
            config,
            manifest,
        }
    }
    /// Blobs by digest.
    pub fn blobs(&self) -> HashMap<String, Vec<u8>> {
        let mut m: HashMap<String, Vec<u8>> =
            self.layers.iter().map(|l| (sha(l), l.clone())).collect();
        m.insert(sha(&self.config), self.config.clone());
        m
    }
}

/// `n` tars, each with a file `layer<i>-<arch>` of `size` pseudo-random bytes.
pub fn data_layers(n: usize, size: usize, arch: &str) -> Vec<Vec<u8>> {
    let mut seed = 0x1234_5678u64 ^ (size as u64) ^ arch.len() as u64;
    let mut out = Vec::new();
    for i in 0..n {
        let mut data = vec![0u8; size];
        for b in data.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        t.append_data(&mut h, format!("layer{i}-{arch}"), &data[..])
            .unwrap();
        out.push(t.into_inner().unwrap());
    }
    out
}

/// A well-behaved read-only registry for `repo`, serving `manifests`
/// (by tag and digest) and `blobs`; Range requests honoured.
pub fn serve_image(
    repo: &str,
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    let repo = repo.to_string();
    move |req: &Req| {
        if req.path == "/v2/" {
            return Resp::json(200, "{}");
        }
        let mprefix = format!("/v2/{repo}/manifests/");
        let bprefix = format!("/v2/{repo}/blobs/");
        if let Some(r) = req.path.strip_prefix(&mprefix) {
            return match manifests.get(r) {
                Some((mt, body)) => Resp::Full {
                    status: 200,
                    headers: vec![
                        ("Content-Type".into(), mt.clone()),
                        ("Docker-Content-Digest".into(), sha(body)),
                    ],
                    body: body.clone(),
                },
                None => Resp::json(
                    404,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                ),
            };
        }
        if let Some(d) = req.path.strip_prefix(&bprefix) {
            return blob_response(req, blobs.get(d));
        }
        Resp::status(404)
    }
}

/// A blob answer honouring `Range: bytes=N-`.
pub fn blob_response(req: &Req, blob: Option<&Vec<u8>>) -> Resp {
    let Some(b) = blob else {
        return Resp::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#);
    };
    if let Some(start) = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
    {
        return Resp::Full {
            status: 206,
            headers: vec![(
                "Content-Range".into(),
                format!("bytes {start}-{}/{}", b.len() - 1, b.len()),
            )],
            body: b[start..].to_vec(),
        };
    }
    Resp::Full {
        status: 200,
        headers: vec![("Content-Type".into(), "application/octet-stream".into())],
        body: b.clone(),
    }
}

/// The manifests map for one image tagged `tag`.
pub fn manifests_for(img: &TestImage, tag: &str) -> HashMap<String, (String, Vec<u8>)> {
    let mt = "application/vnd.oci.image.manifest.v1+json".to_string();
    let mut m = HashMap::new();
    m.insert(tag.to_string(), (mt.clone(), img.manifest.clone()));
    m.insert(sha(&img.manifest), (mt, img.manifest.clone()));
    m
}
