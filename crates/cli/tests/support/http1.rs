//! A tiny HTTP/1.1 client on `std::net::TcpStream` for the registry
//! conformance cases: one connection per request (`Connection: close`),
//! the body sent with a `Content-Length` or chunked (as Go's client sends a
//! body of unknown length, which the OCI conformance suite does for
//! manifest PUTs and streamed PATCHes), the answer read to its end, so a
//! HEAD that sends a body is seen (included with `#[path]`).
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How a request body goes on the wire.
pub enum Body<'a> {
    /// No body, no `Content-Length`.
    None,
    /// `Content-Length: N`, then the bytes (`Sized(&[])` sends `Content-Length: 0`).
    Sized(&'a [u8]),
    /// `Transfer-Encoding: chunked`.
    Chunked(&'a [u8]),
}

pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, e.g. `/v2/repo/blobs/uploads/?digest=sha256%3A…`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, target: impl Into<String>) -> Request<'a> {
        Request {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Body::None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Request<'a> {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn body(mut self, b: Body<'a>) -> Request<'a> {
        self.body = b;
        self
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ended before its `Content-Length` (expected, came).
    pub cut_short: Option<(usize, usize)>,
}

impl Response {
    /// The first value of header `k` (any case).
    pub fn header(&self, k: &str) -> Option<&str> {
        let k = k.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `k`, comma-separated lists split.
    pub fn header_values(&self, k: &str) -> Vec<String> {
        let k = k.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == k)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .collect()
    }

    /// A short form for failure messages: status, headers, start of body.
    pub fn describe(&self) -> String {
        let mut s = format!("{}", self.status);
        for (k, v) in &self.headers {
            if matches!(k.as_str(), "date" | "connection") {
                continue;
            }
            s.push_str(&format!("; {k}: {v}"));
        }
        if !self.body.is_empty() {
            let shown = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).to_string();
            s.push_str(&format!("; body ({} bytes): {shown}", self.body.len()));
        }
        s
    }
}

/// Send `req` to `addr` (host:port) and read the whole answer.
pub fn send(addr: &str, req: &Request) -> Result<Response, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: berth-oci-conformance\r\n",
        req.method, req.target
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut wire = Vec::new();
    match req.body {
        Body::None => head.push_str("\r\n"),
        Body::Sized(b) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            wire.extend_from_slice(b);
        }
        Body::Chunked(b) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            for c in b.chunks(32 * 1024) {
                wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        }
    }
    let mut all = head.into_bytes();
    all.extend_from_slice(&wire);
    // A server may answer early (an error) and close: what it said counts.
    let write_err = s.write_all(&all).err();
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    if raw.is_empty() {
        return Err(format!(
            "{} {}: no answer (write: {write_err:?}, read: {read:?})",
            req.method, req.target
        ));
    }
    parse(&raw, req.method == "HEAD").map_err(|e| format!("{} {}: {e}", req.method, req.target))
}

fn parse(raw: &[u8], head: bool) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("answer without the end of its header")?;
    let text = std::str::from_utf8(&raw[..end]).map_err(|_| "header not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let rest = &raw[end + 4..];
    let mut cut_short = None;
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if head || status == 204 || status == 304 {
        // What a HEAD or 204 sent after its header is a protocol error
        // the caller sees as a body.
        rest.to_vec()
    } else if chunked {
        dechunk(rest)?
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        if rest.len() < n {
            cut_short = Some((n, rest.len()));
        }
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
        cut_short,
    })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body cut short")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("chunked body cut short".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Percent-encode a query value as Go's `url.Values.Encode` does.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `target` with `k=v` added to its query.
pub fn with_param(target: &str, k: &str, v: &str) -> String {
    let sep = if target.contains('?') { '&' } else { '?' };
    format!("{target}{sep}{}={}", query_escape(k), query_escape(v))
}

#[test]
fn answers_are_read_as_sent() {
    // Chunked, with an extension and a trailer-less end.
    let r = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
    // A HEAD's Content-Length is the resource's, and nothing follows.
    let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).unwrap();
    assert!(r.body.is_empty() && r.cut_short.is_none());
    assert_eq!(r.header("CONTENT-LENGTH"), Some("9"));
    // A body shorter than its Content-Length is kept and marked.
    let r = parse(
        b"HTTP/1.1 416 R\r\nContent-Length: 2048\r\n\r\nshort",
        false,
    )
    .unwrap();
    assert_eq!(
        (r.body.as_slice(), r.cut_short),
        (&b"short"[..], Some((2048, 5)))
    );
    // Comma-separated values are split.
    let r = parse(
        b"HTTP/1.1 201 C\r\nOCI-Tag: a, b\r\nOCI-Tag: c\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!(r.header_values("oci-tag"), ["a", "b", "c"]);
    assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", false).is_err());
}

#[test]
fn query_values_are_escaped_as_go_does() {
    assert_eq!(
        with_param("/v2/a/blobs/uploads/", "from", "conformance/repo2"),
        "/v2/a/blobs/uploads/?from=conformance%2Frepo2"
    );
    assert_eq!(
        with_param("/u?_state=x", "digest", "sha256:ab"),
        "/u?_state=x&digest=sha256%3Aab"
    );
}
