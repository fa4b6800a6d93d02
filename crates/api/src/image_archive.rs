//! `GET /images/{name}/get`, `GET /images/get?names=…` (docker save) and
//! `POST /images/load` (docker load).
use std::io::Write;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use crate::distribution::Params;
use crate::progress::Lines;
use crate::{ApiError, AppState};

/// Bytes to the client in chunks; an error once it has gone (the save
/// stops).
struct ToClient<'a> {
    lines: &'a Lines,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl Write for ToClient<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if !self.lines.bytes(std::mem::take(&mut self.buf)) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client has gone",
            ));
        }
        Ok(())
    }
}

/// The images `names` as one docker-archive tar.
pub(crate) async fn save(st: AppState, names: Vec<String>) -> Result<Response, ApiError> {
    st.lines("application/x-tar", move |e, lines| {
        let mut out = ToClient {
            lines,
            buf: Vec::new(),
        };
        let saved = e
            .save_images(&names, engine::image::ArchiveFormat::Docker, &mut out)
            .map_err(ApiError::from)
            .and_then(|()| {
                out.flush()
                    .map_err(|err| ApiError::internal(err.to_string()))
            });
        if let Err(err) = saved {
            if lines.started() {
                // A tar cut short: the client sees the broken stream.
                return;
            }
            lines.fail(err);
        }
    })
    .await
}

/// `GET /images/get?names=a&names=b`.
pub(crate) async fn save_many(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let names = Params::parse(q).all("names");
    save(st, names).await
}

/// `POST /images/load?quiet=`: `{"stream":"Loaded image: …\n"}` per tag
/// (`Loaded image ID: …` for an untagged image), as dockerd.
pub(crate) async fn load(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let _quiet = Params::parse(q).flag("quiet");
    let mut reader = crate::body::reader(body);
    st.lines("application/json", move |e, lines| {
        let loaded = e.load_images(std::io::BufReader::new(&mut reader));
        reader.drain();
        match loaded {
            Ok(loaded) => {
                for img in loaded {
                    if img.tags.is_empty() {
                        lines.stream(&format!("Loaded image ID: {}\n", img.id));
                    }
                    for t in &img.tags {
                        lines.stream(&format!("Loaded image: {}\n", t.familiar()));
                    }
                }
            }
            // dockerd answers 200 and then the error, whatever it is.
            Err(err) => lines.error(&err.into()),
        }
    })
    .await
}
