//! dockerd's streamed answers: JSON lines (`{"status": …}`, `{"stream":
//! …}`, `{"aux": …}`) written by a worker on a blocking thread while the
//! client reads them. A failure before the first line is an HTTP status
//! with `{"message"}`; after it, an `{"errorDetail": …, "error": …}` line,
//! as dockerd answers once it has written the 200.
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{ApiError, AppState};

/// What a worker sends.
pub(crate) enum Msg {
    Data(Bytes),
    Fail(ApiError),
}

/// The worker's end: lines to the client.
pub(crate) struct Lines {
    tx: mpsc::Sender<Msg>,
    started: AtomicBool,
}

/// The handler's end.
pub(crate) type Receiver = mpsc::Receiver<Msg>;

/// A stream of lines and its receiving end.
pub(crate) fn channel() -> (Lines, Receiver) {
    let (tx, rx) = mpsc::channel(64);
    (
        Lines {
            tx,
            started: AtomicBool::new(false),
        },
        rx,
    )
}

/// JSON as Go's encoder writes it: `<`, `>` and `&` escaped (they only
/// occur inside strings, so a plain replacement is exact).
pub(crate) fn go_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

impl Lines {
    /// Send raw bytes (a tar stream); false once the client has gone.
    pub(crate) fn bytes(&self, b: Vec<u8>) -> bool {
        self.started.store(true, Ordering::SeqCst);
        self.tx.blocking_send(Msg::Data(Bytes::from(b))).is_ok()
    }

    /// Send one JSON line; false once the client has gone.
    pub(crate) fn send(&self, v: &Value) -> bool {
        let mut line = go_json(v);
        line.push('\n');
        self.bytes(line.into_bytes())
    }

    /// `{"stream": text}`.
    pub(crate) fn stream(&self, text: &str) -> bool {
        self.send(&json!({ "stream": text }))
    }

    /// Has anything been sent?
    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Has the client gone?
    pub(crate) fn closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Stops a transfer once the client has gone (a pull or push then
    /// ends at its next read or write, as dockerd cancels the request's
    /// context).
    pub(crate) fn cancel(&self) -> engine::distribution::Cancel {
        let tx = self.tx.clone();
        engine::distribution::Cancel::when(move || tx.is_closed())
    }

    /// An error line, whether or not anything was sent.
    pub(crate) fn error(&self, e: &ApiError) {
        self.send(&error_line(e.message(), None));
    }

    /// End with `e`: the status if nothing was sent yet, else an error line.
    pub(crate) fn fail(&self, e: ApiError) {
        if self.started() {
            self.send(&error_line(e.message(), None));
        } else {
            let _ = self.tx.blocking_send(Msg::Fail(e));
        }
    }
}

/// `{"errorDetail":{"message":…},"error":…}` (with the exit `code` of a
/// failed build step).
pub(crate) fn error_line(message: &str, code: Option<i64>) -> Value {
    let mut detail = json!({ "message": message });
    if let Some(c) = code {
        detail = json!({ "code": c, "message": message });
    }
    json!({ "errorDetail": detail, "error": message })
}

/// The answer: the worker's first message decides the status; the rest
/// is the body, until the worker ends.
pub(crate) async fn respond(mut rx: Receiver, content_type: &str) -> Result<Response, ApiError> {
    let first = match rx.recv().await {
        Some(Msg::Fail(e)) => return Err(e),
        Some(Msg::Data(b)) => Some(b),
        None => None,
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(Msg::Data(b)) => Some((Ok::<_, std::convert::Infallible>(b), rx)),
            _ => None,
        }
    });
    let head = futures_util::stream::iter(first.map(Ok));
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type)
        .body(Body::from_stream(futures_util::StreamExt::chain(
            head, rest,
        )))
        .map_err(|e| ApiError::internal(e.to_string()))
}

impl AppState {
    /// Answer with the lines `f` sends, running it on a blocking thread
    /// with an engine.
    pub(crate) async fn lines<F>(&self, content_type: &str, f: F) -> Result<Response, ApiError>
    where
        F: FnOnce(&engine::Engine, &Lines) + Send + 'static,
    {
        let (lines, rx) = channel();
        let lines = std::sync::Arc::new(lines);
        let st = self.clone();
        tokio::spawn(async move {
            let mine = lines.clone();
            let ran = st
                .engine(move |e| {
                    f(e, &mine);
                    Ok(())
                })
                .await;
            if let Err(e) = ran {
                // The engine did not open: nothing was sent.
                let _ = lines.tx.send(Msg::Fail(e)).await;
            }
        });
        respond(rx, content_type).await
    }
}

/// A size as Go's `units.HumanSize`: decimal units, 4 significant digits.
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = n as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    let int_digits = if size >= 100.0 {
        3
    } else if size >= 10.0 {
        2
    } else {
        1
    };
    let mut s = format!("{size:.prec$}", prec = 4 - int_digits);
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// dockerd's progress bar for `current` of `total` bytes (a client that
/// is not a terminal: 50 columns, then the counts).
pub(crate) fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((((current as f64) / (total as f64)) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    format!("[{}>{}] {numbers}", "=".repeat(pct), " ".repeat(50 - pct))
}

/// A progress line of layer `id`: `status` with `{current,total}` and its bar.
pub(crate) fn layer_progress(status: &str, id: &str, current: u64, total: u64) -> Value {
    json!({
        "status": status,
        "progressDetail": {"current": current, "total": total},
        "progress": bar(current, total),
        "id": id,
    })
}

/// A line of layer `id` without counts.
pub(crate) fn layer_status(status: &str, id: &str) -> Value {
    json!({"status": status, "progressDetail": {}, "id": id})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from dockerd 20.10 (a pull and a push over its socket).
    #[test]
    fn bars_and_sizes_as_dockerd_writes_them() {
        assert_eq!(
            bar(36445, 1069531),
            "[=>                                                 ]  36.45kB/1.07MB"
        );
        assert_eq!(
            bar(19968, 1984306),
            "[>                                                  ]  19.97kB/1.984MB"
        );
        assert_eq!(
            bar(927232, 1984306),
            "[=======================>                           ]  927.2kB/1.984MB"
        );
        assert_eq!(
            bar(1069531, 1069531),
            "[==================================================>]   1.07MB/1.07MB"
        );
        assert_eq!(
            bar(2140160, 1984306),
            "[==================================================>]   2.14MB"
        );
        assert_eq!(human_size(522), "522B");
        assert_eq!(human_size(131072), "131.1kB");
        assert_eq!(
            go_json(&json!({"progress": "[=>]"})),
            r#"{"progress":"[=\u003e]"}"#
        );
    }
}
