//! `POST /containers/{id}/attach` (a hijacked raw stream: `hijack.rs`) and
//! `POST /containers/{id}/resize`.
//!
//! The stream is the container's monitor's attach socket, translated: the
//! monitor's frames (`[stream][len u32 BE][data]`, stream 3 = the exit)
//! become dockerd's stdcopy frames (`[stream 0 0 0][len u32 BE][data]`),
//! or raw bytes for a `-t` container; what the client writes is the
//! container's stdin. `docker run` attaches before it starts the
//! container: such an attach is held as pending, the start tells the
//! monitor how many clients to wait for before it reads any output (the
//! output waits in the container's pipe), and the held attaches connect
//! once the start returns — so no output is lost.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::containers::truthy;
use crate::version::ApiVersion;
use crate::{ApiError, AppState};

/// Attaches waiting for their container's start, by full container id.
#[derive(Default)]
pub(crate) struct Pending {
    map: Mutex<HashMap<String, Waiting>>,
}

struct Waiting {
    clients: u32,
    started: watch::Sender<Option<bool>>,
}

impl Pending {
    /// One more client waits for `id`'s start; the receiver turns
    /// `Some(true)` once it has started (`Some(false)`: the start failed).
    fn wait(self: &Arc<Self>, id: &str) -> (watch::Receiver<Option<bool>>, PendingGuard) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let w = map.entry(id.to_string()).or_insert_with(|| Waiting {
            clients: 0,
            started: watch::channel(None).0,
        });
        w.clients += 1;
        let rx = w.started.subscribe();
        (
            rx,
            PendingGuard {
                pending: self.clone(),
                id: id.to_string(),
                armed: true,
            },
        )
    }

    /// The start of `id` takes its waiting clients: how many, and how to
    /// tell them the outcome.
    pub(crate) fn take(&self, id: &str) -> Option<(u32, watch::Sender<Option<bool>>)> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id)
            .filter(|w| w.clients > 0)
            .map(|w| (w.clients, w.started))
    }
}

/// A waiting client that goes away before the start no longer counts (the
/// monitor must not wait for it).
struct PendingGuard {
    pending: Arc<Pending>,
    id: String,
    armed: bool,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut map = self.pending.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = map.get_mut(&self.id) {
            w.clients = w.clients.saturating_sub(1);
            if w.clients == 0 {
                map.remove(&self.id);
            }
        }
    }
}

/// `attach` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct AttachQuery {
    stream: Option<String>,
    stdin: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    logs: Option<String>,
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

/// What the bridge needs to know about the container.
struct Target {
    id: String,
    tty: bool,
    running: bool,
    open_stdin: bool,
    log_path: std::path::PathBuf,
}

/// `POST /containers/{id}/attach`.
pub(crate) async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    version: Option<axum::Extension<ApiVersion>>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let target = st
        .engine(move |e| {
            let c = e.container(&id)?;
            Ok(Target {
                id: c.id().as_str().to_string(),
                tty: c.config.tty,
                running: c.is_running(),
                open_stdin: c.config.open_stdin,
                log_path: e.container_log(&c),
            })
        })
        .await?;
    let detach_keys = match q.detach_keys.as_deref() {
        None | Some("") => vec![0x10, 0x11],
        Some(spec) => parse_detach_keys(spec)?,
    };
    let opts = Streams {
        stdin: truthy(&q.stdin) && target.open_stdin,
        stdout: truthy(&q.stdout),
        stderr: truthy(&q.stderr),
        tty: target.tty,
        detach_keys,
    };
    let stream = truthy(&q.stream);
    let logs = truthy(&q.logs);
    // Registered before the answer goes out: the client starts the
    // container only after it has it.
    let pending = (stream && !target.running).then(|| st.pending.wait(&target.id));
    let multiplexed = !target.tty && version.is_none_or(|v| v.0 .0 >= (1, 42));
    let content_type = if multiplexed {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    let hijacked = crate::hijack::hijack(&mut req, content_type)?;
    let slow_reader = hijacked.holds_until_read(&req);
    let until_read = hijacked.until_read();
    let st2 = st.clone();
    let client = hijacked.client;
    tokio::spawn(async move {
        let Some(mut client) = client.await else {
            return;
        };
        // Output that follows the 101 at once (old logs, a running
        // container's) can reach a client in the read that takes the
        // headers, and docker-py reads the stream from the socket under
        // its HTTP buffer, losing those bytes: wait until it has read the
        // 101. A container waiting for this attach has nothing to say yet.
        if slow_reader && (logs || pending.is_none()) {
            until_read.await;
        }
        if logs {
            let path = target.log_path.clone();
            let tty = target.tty;
            let (out, err) = (opts.stdout, opts.stderr);
            let old = tokio::task::spawn_blocking(move || {
                let mut bytes = Vec::new();
                for e in engine::logs::read_all(&path).unwrap_or_default() {
                    let (wanted, kind) = match e.stream {
                        engine::logs::Stream::Stdout => (out, 1),
                        engine::logs::Stream::Stderr => (err, 2),
                    };
                    if wanted {
                        bytes.extend(client_frame(kind, &e.data, tty));
                    }
                }
                bytes
            })
            .await
            .unwrap_or_default();
            if client.write_all(&old).await.is_err() {
                return;
            }
        }
        if !stream {
            let _ = client.shutdown().await;
            return;
        }
        if let Some((mut rx, mut guard)) = pending {
            // Started through this server (the start takes us), or by
            // someone else (seen in the record).
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        if rx.borrow().is_some() {
                            guard.armed = false;
                            break;
                        }
                    }
                    () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                        let id = target.id.clone();
                        let running = st2
                            .engine(move |e| Ok(e.container(&id)?.is_running()))
                            .await
                            .unwrap_or(false);
                        if running {
                            break;
                        }
                    }
                }
            }
            if *rx.borrow() == Some(false) {
                let _ = client.shutdown().await;
                return;
            }
        }
        let id = target.id.clone();
        let want_stdin = opts.stdin;
        let monitor = st2
            .engine(move |e| {
                // A monitor that a restart policy is replacing has no
                // socket for a moment: try again briefly while it runs.
                let mut tries = 0;
                loop {
                    let c = e.container(&id)?;
                    match e.attach_connect(&c, want_stdin, None) {
                        Ok(s) => return Ok(s),
                        Err(err) if tries >= 20 || !c.is_running() => return Err(err.into()),
                        Err(_) => {
                            tries += 1;
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                    }
                }
            })
            .await
            .and_then(|s| {
                s.set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixStream::from_std(s))
                    .map_err(|e| ApiError::internal(e.to_string()))
            });
        match monitor {
            Ok(m) => bridge(client, m, &opts).await,
            Err(_) => {
                let _ = client.shutdown().await;
            }
        }
    });
    Ok(hijacked.response)
}

/// docker-py (and docker-compose 1.x and testcontainers, through it) reads
/// a hijacked stream from the socket under its HTTP buffer: bytes that
/// arrived with the headers are lost to it. Over TCP such a client gets
/// dockerd's head start before the first output (on a unix socket every
/// client is waited for: `Hijacked::holds_until_read`); the docker CLI
/// (Go) needs none.
pub(crate) fn reads_past_the_headers(req: &Request) -> bool {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| {
            ua.contains("docker-sdk-python")
                || ua.contains("docker-py/")
                || ua.contains("tc-python/")
        })
}

/// Which streams the client asked for.
pub(crate) struct Streams {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) tty: bool,
    /// With a tty and stdin: the keys that end the attach (not the
    /// container).
    pub(crate) detach_keys: Vec<u8>,
}

/// dockerd's frame for stream `kind` (1 stdout, 2 stderr), or the bytes as
/// they are for a tty.
pub(crate) fn client_frame(kind: u8, data: &[u8], tty: bool) -> Vec<u8> {
    if tty {
        return data.to_vec();
    }
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&[kind, 0, 0, 0]);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// `--detach-keys` as Docker spells them: `ctrl-p,ctrl-q`, `a,ctrl-@`.
pub(crate) fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::bad_request(format!("Invalid detach keys ({spec}) provided"));
    let mut out = Vec::new();
    for key in spec.split(',') {
        let b = key.as_bytes();
        if b.len() == 1 {
            out.push(b[0]);
            continue;
        }
        let Some(c) = key.strip_prefix("ctrl-") else {
            return Err(bad());
        };
        let code = match c.as_bytes() {
            [x @ b'a'..=b'z'] => x - b'a' + 1,
            [b'@'] => 0,
            [b'['] => 27,
            [b'\\'] => 28,
            [b']'] => 29,
            [b'^'] => 30,
            [b'_'] => 31,
            _ => return Err(bad()),
        };
        out.push(code);
    }
    Ok(out)
}

/// Watches a client's input for the detach keys (`ctrl-p,ctrl-q`).
pub(crate) struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    pub(crate) fn new(keys: Vec<u8>) -> DetachKeys {
        DetachKeys { keys, matched: 0 }
    }

    /// What of `data` goes on to the container, and whether the whole
    /// sequence has now been typed (the keys themselves never pass; a
    /// partial sequence that breaks off passes late).
    pub(crate) fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut pass = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (pass, true);
                }
            } else {
                pass.extend_from_slice(&self.keys[..self.matched]);
                self.matched = usize::from(b == self.keys[0]);
                if self.matched == 0 {
                    pass.push(b);
                }
            }
        }
        (pass, false)
    }
}

/// Copy between the client and the monitor until the container exits, the
/// client goes away or types the detach keys.
async fn bridge<C>(client: C, monitor: tokio::net::UnixStream, opts: &Streams)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut mon_r, mut mon_w) = monitor.into_split();
    let output = async {
        let mut head = [0u8; 5];
        loop {
            if mon_r.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut data = vec![0u8; len];
            if mon_r.read_exact(&mut data).await.is_err() || head[0] == 3 {
                break;
            }
            let wanted = match head[0] {
                1 => opts.stdout,
                2 => opts.stderr,
                _ => false,
            };
            if wanted
                && client_w
                    .write_all(&client_frame(head[0], &data, opts.tty))
                    .await
                    .is_err()
            {
                break;
            }
        }
    };
    let input = async {
        if !opts.stdin {
            return std::future::pending::<()>().await;
        }
        let mut keys = (opts.tty && !opts.detach_keys.is_empty())
            .then(|| DetachKeys::new(opts.detach_keys.clone()));
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // The client closed its side: the container's stdin
                    // closes (dockerd's StdinOnce); output goes on.
                    let _ = mon_w.shutdown().await;
                    return std::future::pending::<()>().await;
                }
                Ok(n) => n,
            };
            let (pass, detached) = match keys.as_mut() {
                Some(k) => k.feed(&buf[..n]),
                None => (buf[..n].to_vec(), false),
            };
            if mon_w.write_all(&pass).await.is_err() {
                return std::future::pending::<()>().await;
            }
            if detached {
                return;
            }
        }
    };
    tokio::select! {
        () = output => {}
        () = input => {}
    }
    let _ = client_w.shutdown().await;
}

/// `resize` parameters (containers and exec instances).
#[derive(Deserialize, Default)]
pub(crate) struct ResizeQuery {
    pub(crate) h: Option<u16>,
    pub(crate) w: Option<u16>,
}

/// `POST /containers/{id}/resize?h=&w=`.
pub(crate) async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        e.resize_container(&id, q.h.unwrap_or(0), q.w.unwrap_or(0))?;
        Ok(StatusCode::OK)
    })
    .await
}
