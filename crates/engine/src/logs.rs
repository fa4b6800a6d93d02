//! Container logs: the log drivers the monitor writes through and the
//! reader behind `berth logs`.
//!
//! - `json-file` (default): Docker's on-disk format, one JSON object per
//!   line (`{"log":"…\n","stream":"stdout","time":"…"}`), a partial line
//!   without its `\n`; **bounded by default** (max-size 10m, max-file 3),
//!   rotated as `container.log.1`, `.2`, …
//! - `local`: the same lines, rotated files gzip-compressed, bounded by
//!   default at 20m × 5 (Docker's `local` defaults; Docker's own `local`
//!   format is protobuf, berth's is not).
//! - `none`: nothing is kept; `logs` says so.
//!
//! The reader also accepts the CRI lines (`<time> <stream> <F|P> <data>`)
//! that berth wrote before json-file.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Which stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout (and everything from a pty).
    Stdout,
    /// stderr.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Docker's `HostConfig.LogConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// `json-file`, `local` or `none` (empty: json-file).
    #[serde(rename = "Type")]
    pub driver: String,
    /// `--log-opt` as given.
    pub config: BTreeMap<String, String>,
}

/// The options each driver accepts.
const OPTIONS: &[&str] = &["max-size", "max-file", "compress", "labels", "env"];

/// A log config resolved to what the writer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// No log at all (`none`).
    pub disabled: bool,
    /// Rotate when a file would grow past this (None: unbounded).
    pub max_size: Option<u64>,
    /// Files kept, the current one included.
    pub max_file: u32,
    /// gzip rotated files.
    pub compress: bool,
    /// Label names whose values go into each entry's `attrs`.
    pub labels: Vec<String>,
    /// Environment variable names whose values go into `attrs`.
    pub env: Vec<String>,
}

impl LogConfig {
    /// The driver's name.
    pub fn driver(&self) -> &str {
        if self.driver.is_empty() {
            "json-file"
        } else {
            &self.driver
        }
    }

    /// Check the driver and its options; the effective settings.
    pub fn effective(&self) -> Result<Effective, String> {
        let driver = self.driver();
        let (size, files, compress) = match driver {
            "json-file" => (10 << 20, 3, false),
            "local" => (20 << 20, 5, true),
            "none" => {
                if let Some(k) = self.config.keys().next() {
                    return Err(format!("the none log driver takes no options (got {k})"));
                }
                return Ok(Effective {
                    disabled: true,
                    max_size: None,
                    max_file: 1,
                    compress: false,
                    labels: Vec::new(),
                    env: Vec::new(),
                });
            }
            other => {
                return Err(format!(
                    "log driver {other:?} is not supported: use json-file, local or none"
                ))
            }
        };
        for k in self.config.keys() {
            if !OPTIONS.contains(&k.as_str()) {
                return Err(format!(
                    "unknown log opt {k:?} for the {driver} log driver: use {}",
                    OPTIONS.join(", ")
                ));
            }
        }
        let max_size = match self.config.get("max-size").map(String::as_str) {
            None => Some(size),
            Some("-1") => None,
            Some(s) => {
                let v = model::size::parse_bytes(s)
                    .map_err(|_| format!("max-size {s:?}: use a size like 10m, or -1"))?;
                if v == 0 {
                    return Err("max-size must be greater than 0".into());
                }
                Some(v)
            }
        };
        let max_file = match self.config.get("max-file") {
            None => files,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("max-file {s:?}: must be a number of at least 1")),
            },
        };
        let compress = match self.config.get("compress").map(String::as_str) {
            None => compress,
            Some("true") => true,
            Some("false") => false,
            Some(s) => return Err(format!("compress {s:?}: use true or false")),
        };
        let list = |k: &str| -> Vec<String> {
            self.config
                .get(k)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Effective {
            disabled: false,
            max_size,
            max_file,
            compress,
            labels: list("labels"),
            env: list("env"),
        })
    }
}

/// One json-file line.
#[derive(Serialize, Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attrs: BTreeMap<String, String>,
}

/// Format a chunk of output as json-file lines, appended to `out`: one
/// entry per line, the last one partial (no `\n`) if the chunk ends mid-line.
pub fn format_chunk(
    out: &mut Vec<u8>,
    stream: Stream,
    now: DateTime<Utc>,
    data: &[u8],
    attrs: &BTreeMap<String, String>,
) {
    let time = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(rest.len());
        let line = JsonLine {
            log: String::from_utf8_lossy(&rest[..end]).into_owned(),
            stream: stream.as_str().into(),
            time: time.clone(),
            attrs: attrs.clone(),
        };
        let _ = serde_json::to_writer(&mut *out, &line);
        out.push(b'\n');
        rest = &rest[end..];
    }
}

/// The attrs `--log-opt labels=`/`env=` ask for, from the container's
/// labels and environment.
pub fn attrs_for(
    eff: &Effective,
    labels: &BTreeMap<String, String>,
    env: &[String],
) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    for l in &eff.labels {
        if let Some(v) = labels.get(l) {
            attrs.insert(l.clone(), v.clone());
        }
    }
    for e in &eff.env {
        if let Some(v) = env
            .iter()
            .find_map(|kv| kv.strip_prefix(e.as_str())?.strip_prefix('='))
        {
            attrs.insert(e.clone(), v.to_string());
        }
    }
    attrs
}

/// The monitor's side: appends entries and rotates.
pub struct Writer {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    eff: Effective,
    attrs: BTreeMap<String, String>,
    buf: Vec<u8>,
    /// Per stream: the last entry in the log is a partial line…
    open: [bool; 2],
    /// …and output after it was dropped (a full disk).
    lost: [bool; 2],
}

/// The name of rotated file `n` (1 = newest).
fn rotated(path: &Path, n: u32, gz: bool) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

impl Writer {
    /// Open (appending) the log at `path`; `None` for the `none` driver.
    pub fn open(
        path: &Path,
        eff: &Effective,
        attrs: BTreeMap<String, String>,
    ) -> std::io::Result<Option<Writer>> {
        if eff.disabled {
            return Ok(None);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Some(Writer {
            path: path.to_path_buf(),
            file,
            size,
            eff: eff.clone(),
            attrs,
            buf: Vec::with_capacity(64 * 1024),
            open: [false; 2],
            lost: [false; 2],
        }))
    }

    /// Log a chunk of output. Errors (a full disk) drop the chunk: the
    /// container's output keeps flowing.
    pub fn write(&mut self, stream: Stream, now: DateTime<Utc>, data: &[u8]) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let s = stream as usize;
        if self.open[s] && self.lost[s] {
            // The rest of a logged partial line was dropped: end that line,
            // or the next output is read as its continuation.
            format_chunk(&mut buf, stream, now, b"\n", &self.attrs);
        }
        format_chunk(&mut buf, stream, now, data, &self.attrs);
        // Whole entries go to one file: rotate at entry boundaries.
        let mut rest = &buf[..];
        let mut written = 0;
        while !rest.is_empty() {
            let mut end = 0;
            let limit = self.eff.max_size.map(|m| m.saturating_sub(self.size));
            for line in rest.split_inclusive(|&b| b == b'\n') {
                if let Some(l) = limit {
                    if end + line.len() > l as usize && (end > 0 || self.size > 0) {
                        break;
                    }
                }
                end += line.len();
            }
            if end > 0 {
                if self.file.write_all(&rest[..end]).is_ok() {
                    self.size += end as u64;
                    written += end;
                } else {
                    // A write cut short (a full disk) leaves half an
                    // entry: take it back, or the next entry written once
                    // there is space again is glued to it and unreadable.
                    let _ = self.file.set_len(self.size);
                }
            }
            rest = &rest[end..];
            if !rest.is_empty() && self.rotate().is_err() {
                break;
            }
        }
        if written == buf.len() {
            self.open[s] = data.last().is_some_and(|&b| b != b'\n');
            self.lost[s] = false;
        } else {
            // Entries are written whole, and only a chunk's last one can
            // be partial: a chunk cut short ends on a complete line.
            if written > 0 {
                self.open[s] = false;
            }
            self.lost[s] = true;
        }
        self.buf = buf;
    }

    /// Move the current file to `.1` (older ones up, the oldest dropped)
    /// and start an empty one; with max-file 1, empty the file.
    fn rotate(&mut self) -> std::io::Result<()> {
        if self.eff.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let gz = self.eff.compress;
        let last = self.eff.max_file - 1;
        let _ = std::fs::remove_file(rotated(&self.path, last, gz));
        for n in (1..last).rev() {
            let _ = std::fs::rename(rotated(&self.path, n, gz), rotated(&self.path, n + 1, gz));
        }
        if gz {
            let tmp = rotated(&self.path, 1, false);
            std::fs::rename(&self.path, &tmp)?;
            self.reopen()?;
            compress_file(&tmp, &rotated(&self.path, 1, true))?;
        } else {
            std::fs::rename(&self.path, rotated(&self.path, 1, false))?;
            self.reopen()?;
        }
        Ok(())
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn compress_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut input = std::fs::File::open(from)?;
        let out = std::fs::File::create(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        std::io::copy(&mut input, &mut enc)?;
        enc.finish()?;
    }
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

/// One complete log line (partials joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When its first part was written.
    pub time: DateTime<Utc>,
    /// Its stream.
    pub stream: Stream,
    /// The bytes, with the trailing newline if the line was complete.
    pub data: Vec<u8>,
    /// `--log-opt labels=/env=` values, for `logs --details`.
    pub attrs: BTreeMap<String, String>,
}

/// Incremental parser: feed raw file lines, get complete entries.
#[derive(Default)]
pub struct Parser {
    pending: [Option<Entry>; 2],
}

impl Parser {
    /// Parse one line of the log file (without its `\n`).
    pub fn feed(&mut self, line: &[u8]) -> Option<Entry> {
        let (time, stream, data, complete, attrs) = if line.first() == Some(&b'{') {
            let j: JsonLine = serde_json::from_slice(line).ok()?;
            let stream = match j.stream.as_str() {
                "stderr" => Stream::Stderr,
                _ => Stream::Stdout,
            };
            let time = DateTime::parse_from_rfc3339(&j.time)
                .ok()?
                .with_timezone(&Utc);
            let mut data = j.log.into_bytes();
            let complete = data.last() == Some(&b'\n');
            if complete {
                data.pop();
            }
            (time, stream, data, complete, j.attrs)
        } else {
            // berth's earlier CRI-style lines.
            let mut parts = line.splitn(4, |&b| b == b' ');
            let ts = std::str::from_utf8(parts.next()?).ok()?;
            let stream = match parts.next()? {
                b"stdout" => Stream::Stdout,
                b"stderr" => Stream::Stderr,
                _ => return None,
            };
            let tag = parts.next()?;
            let data = parts.next().unwrap_or_default().to_vec();
            let time = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
            (time, stream, data, tag == b"F", BTreeMap::new())
        };
        let slot = &mut self.pending[stream as usize];
        let entry = slot.get_or_insert_with(|| Entry {
            time,
            stream,
            data: Vec::new(),
            attrs,
        });
        entry.data.extend_from_slice(&data);
        if complete {
            let mut e = slot.take()?;
            e.data.push(b'\n');
            return Some(e);
        }
        None
    }

    /// Entries still partial at the end of the file.
    pub fn flush(&mut self) -> Vec<Entry> {
        self.pending.iter_mut().filter_map(Option::take).collect()
    }
}

fn read_lines(r: impl Read, parser: &mut Parser, out: &mut Vec<Entry>) -> std::io::Result<()> {
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if let Some(e) = parser.feed(&line) {
            out.push(e);
        }
        line.clear();
    }
    Ok(())
}

/// The files of a log, oldest first (rotated ones, then the current one).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated_files = Vec::new();
    // A rotation under way renames the files one by one, newest last:
    // one name may be missing for a moment.
    let mut missing = 0;
    for n in 1..=1000 {
        let plain = rotated(path, n, false);
        let gz = rotated(path, n, true);
        if gz.exists() {
            rotated_files.push(gz);
        } else if plain.exists() {
            rotated_files.push(plain);
        } else {
            missing += 1;
            if missing == 2 {
                break;
            }
            continue;
        }
        missing = 0;
    }
    rotated_files.reverse();
    rotated_files.push(path.to_path_buf());
    rotated_files
}

/// Read every entry of a log, rotated files included, oldest first.
pub fn read_all(path: &Path) -> std::io::Result<Vec<Entry>> {
    let mut parser = Parser::default();
    let mut out = Vec::new();
    for f in files(path) {
        let file = match std::fs::File::open(&f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if f.extension().is_some_and(|e| e == "gz") {
            read_lines(flate2::read::GzDecoder::new(file), &mut parser, &mut out)?;
        } else {
            read_lines(file, &mut parser, &mut out)?;
        }
    }
    out.extend(parser.flush());
    Ok(out)
}

/// Every entry of a log, as [`read_all`], and a follower that goes on
/// right after the last byte read: nothing written meanwhile is given
/// twice or missed (a follower made before the read gives again what
/// the read saw; one made after misses what came in between).
pub fn read_and_follow(path: &Path) -> std::io::Result<(Vec<Entry>, Follower)> {
    // The current file first, by descriptor: rotated away meanwhile, it
    // is read through this descriptor only (and its rotated name skipped).
    let mut current = match std::fs::File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let current_id = current
        .as_ref()
        .map(|f| f.metadata())
        .transpose()?
        .map(|m| (m.dev(), m.ino()));
    let mut parser = Parser::default();
    let mut out = Vec::new();
    for f in files(path) {
        if f == path {
            continue;
        }
        let file = match std::fs::File::open(&f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let m = file.metadata()?;
        if Some((m.dev(), m.ino())) == current_id {
            // Rotated since it was opened: it and the files newer than it
            // are the follower's to read.
            break;
        }
        if f.extension().is_some_and(|e| e == "gz") {
            read_lines(flate2::read::GzDecoder::new(file), &mut parser, &mut out)?;
        } else {
            read_lines(file, &mut parser, &mut out)?;
        }
    }
    let mut pos = 0;
    let mut pending = Vec::new();
    if let Some(file) = current.as_mut() {
        let mut bytes = Vec::new();
        pos = file.read_to_end(&mut bytes)? as u64;
        // Complete lines now; a line still being written is the
        // follower's.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        pending = bytes.split_off(complete);
        read_lines(&bytes[..], &mut parser, &mut out)?;
    }
    out.extend(parser.flush());
    let follower = Follower {
        tail: LineTail {
            path: path.to_path_buf(),
            file: current,
            pos,
            pending,
        },
        parser: Parser::default(),
    };
    Ok((out, follower))
}

/// Follows a file of lines as it grows, across rotations (the file renamed
/// away is read to its end, then the new one from its start) and
/// truncations (max-file 1).
pub struct LineTail {
    path: PathBuf,
    file: Option<std::fs::File>,
    pos: u64,
    pending: Vec<u8>,
}

impl LineTail {
    /// Start at the current end of the file.
    pub fn at_end(path: &Path) -> LineTail {
        let file = std::fs::File::open(path).ok();
        let pos = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len())
            .unwrap_or(0);
        LineTail {
            path: path.to_path_buf(),
            file,
            pos,
            pending: Vec::new(),
        }
    }

    /// Start at the beginning of the file (it may not exist yet).
    pub fn from_start(path: &Path) -> LineTail {
        LineTail {
            path: path.to_path_buf(),
            file: std::fs::File::open(path).ok(),
            pos: 0,
            pending: Vec::new(),
        }
    }

    /// Complete lines (without `\n`) written since the last call.
    pub fn poll(&mut self) -> std::io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        loop {
            let Some(file) = self.file.as_mut() else {
                self.file = std::fs::File::open(&self.path).ok();
                self.pos = 0;
                if self.file.is_none() {
                    return Ok(out);
                }
                continue;
            };
            let meta = file.metadata()?;
            // Rotated away (the path names another file): the writer has
            // left this one, so what is read now is all of it; then on to
            // the file written after it. (Looked at before the read: a
            // file found rotated after it may have grown in between.)
            let rotated_away = matches!(
                std::fs::metadata(&self.path),
                Ok(m) if m.ino() != meta.ino() || m.dev() != meta.dev()
            );
            if meta.len() < self.pos {
                self.pos = 0; // truncated
            }
            file.seek(SeekFrom::Start(self.pos))?;
            let mut chunk = Vec::new();
            let n = file.read_to_end(&mut chunk)?;
            self.pos += n as u64;
            self.pending.extend_from_slice(&chunk);
            while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=i).collect();
                line.pop();
                out.push(line);
            }
            if !rotated_away {
                return Ok(out);
            }
            self.file = successor(&self.path, (meta.dev(), meta.ino()));
            self.pos = 0;
        }
    }
}

/// The file written after the rotated file `id` of the log at `path`:
/// the next newer rotated file, or the current one (also when `id` is not
/// among the rotated ones any more: removed, or compressed into a new
/// file). Several rotations may have come since `id` was the current
/// file; none of them is skipped.
fn successor(path: &Path, id: (u64, u64)) -> Option<std::fs::File> {
    let id_of = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    'again: for _ in 0..100 {
        let mut missing = 0;
        for n in 1..=1000 {
            let name = rotated(path, n, false);
            let found = id_of(&name);
            // One name may be missing while a rotation renames the files.
            missing = if found.is_none() { missing + 1 } else { 0 };
            match found {
                Some(found) if found == id => {
                    let next = if n == 1 {
                        path.to_path_buf()
                    } else {
                        rotated(path, n - 1, false)
                    };
                    let file = std::fs::File::open(&next).ok();
                    // Rotated again while it was opened: the names moved.
                    if id_of(&name) != Some(id) {
                        continue 'again;
                    }
                    return file.or_else(|| std::fs::File::open(path).ok());
                }
                Some(_) => {}
                None if missing == 2 => break,
                None => {}
            }
        }
        break;
    }
    std::fs::File::open(path).ok()
}

/// Follows a container's log (see [`LineTail`]), parsed into entries.
pub struct Follower {
    tail: LineTail,
    parser: Parser,
}

impl Follower {
    /// Start at the current end of the log.
    pub fn at_end(path: &Path) -> Follower {
        Follower {
            tail: LineTail::at_end(path),
            parser: Parser::default(),
        }
    }

    /// Start at the beginning of the log: everything in it, then what follows.
    pub fn from_start(path: &Path) -> Follower {
        Follower {
            tail: LineTail::from_start(path),
            parser: Parser::default(),
        }
    }

    /// New complete entries since the last call.
    pub fn poll(&mut self) -> std::io::Result<Vec<Entry>> {
        Ok(self
            .tail
            .poll()?
            .iter()
            .filter_map(|l| self.parser.feed(l))
            .collect())
    }
}

/// Write an entry for the user: with `details`, the attrs first
/// (`k=v,k2=v2 `), with `timestamps` the time.
pub fn print_entry(
    w: &mut impl Write,
    e: &Entry,
    timestamps: bool,
    details: bool,
) -> std::io::Result<()> {
    if timestamps {
        write!(w, "{} ", e.time.to_rfc3339_opts(SecondsFormat::Nanos, true))?;
    }
    if details {
        let attrs: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(w, "{} ", attrs.join(","))?;
    }
    w.write_all(&e.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(cfg: &[(&str, &str)]) -> Effective {
        LogConfig {
            driver: String::new(),
            config: cfg
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
        .effective()
        .unwrap()
    }

    #[test]
    fn round_trips_lines_and_partials() {
        let now = Utc::now();
        let mut buf = Vec::new();
        let none = BTreeMap::new();
        format_chunk(&mut buf, Stream::Stdout, now, b"hello\nwor", &none);
        format_chunk(&mut buf, Stream::Stderr, now, b"oops \"q\"\n", &none);
        format_chunk(&mut buf, Stream::Stdout, now, b"ld\n", &none);
        let first = std::str::from_utf8(&buf).unwrap().lines().next().unwrap();
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["log"], "hello\n");
        assert_eq!(v["stream"], "stdout");
        let mut p = Parser::default();
        let got: Vec<(Stream, String)> = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| p.feed(l))
            .map(|e| (e.stream, String::from_utf8_lossy(&e.data).into_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Stream::Stdout, "hello\n".to_string()),
                (Stream::Stderr, "oops \"q\"\n".to_string()),
                (Stream::Stdout, "world\n".to_string()),
            ]
        );
    }

    #[test]
    fn reads_earlier_cri_lines() {
        let e = Parser::default()
            .feed(b"2026-01-01T00:00:00.000000001Z stdout F a b  c")
            .unwrap();
        assert_eq!(e.data, b"a b  c\n");
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(eff(&[]).max_size, Some(10 << 20));
        assert_eq!(eff(&[]).max_file, 3);
        assert_eq!(eff(&[("max-size", "-1")]).max_size, None);
        let bad = |driver: &str, k: &str, v: &str| {
            LogConfig {
                driver: driver.into(),
                config: [(k.to_string(), v.to_string())].into(),
            }
            .effective()
            .is_err()
        };
        assert!(bad("json-file", "max-file", "0"));
        assert!(bad("json-file", "max-size", "lots"));
        assert!(bad("json-file", "mode", "non-blocking"));
        assert!(bad("none", "max-size", "1m"));
        assert!(bad("syslog", "max-size", "1m"));
        let local = LogConfig {
            driver: "local".into(),
            config: BTreeMap::new(),
        };
        assert!(local.effective().unwrap().compress);
    }

    #[test]
    fn a_read_then_follow_gives_each_line_once_while_the_log_grows() {
        // A writer appends (and rotates, max-file large enough to keep
        // everything) while a reader reads what is there and follows on:
        // every line exactly once, in order. (A follower made before the
        // read gave the lines written in between twice: `logs -f` and
        // docker-py's `containers.run`.)
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("container.log");
            let e = eff(&[("max-size", "64k"), ("max-file", "100")]);
            let mut w = Writer::open(&path, &e, BTreeMap::new()).unwrap().unwrap();
            let n = 20_000;
            let writer = std::thread::spawn(move || {
                for i in 0..n {
                    w.write(Stream::Stdout, Utc::now(), format!("line {i}\n").as_bytes());
                }
            });
            std::thread::sleep(std::time::Duration::from_millis(2));
            let (mut got, mut follower) = read_and_follow(&path).unwrap();
            while !writer.is_finished() {
                got.extend(follower.poll().unwrap());
            }
            writer.join().unwrap();
            got.extend(follower.poll().unwrap());
            let lines: Vec<String> = got
                .iter()
                .map(|e| String::from_utf8_lossy(&e.data).into_owned())
                .collect();
            let want: Vec<String> = (0..n).map(|i| format!("line {i}\n")).collect();
            assert_eq!(lines.len(), want.len());
            assert!(lines == want, "lines out of order or repeated");
        }
    }

    /// Output the disk has no room for is dropped, and a line it cut
    /// short is ended: the next output is not read as its continuation.
    #[test]
    fn a_full_disk_drops_output_but_never_glues_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = Writer::open(&path, &eff(&[]), BTreeMap::new())
            .unwrap()
            .unwrap();
        w.write(Stream::Stdout, Utc::now(), b"one\ntw");
        // /dev/full: every write fails with ENOSPC.
        let full = std::fs::OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .unwrap();
        let real = std::mem::replace(&mut w.file, full);
        w.write(Stream::Stdout, Utc::now(), b"o\nthree\n");
        w.file = real;
        w.write(Stream::Stdout, Utc::now(), b"four\n");
        let lines: Vec<String> = read_all(&path)
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.data).unwrap())
            .collect();
        assert_eq!(lines, ["one\n", "tw\n", "four\n"]);
    }

    #[test]
    fn rotation_keeps_the_log_bounded_and_readable() {
        for compress in ["false", "true"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("container.log");
            let e = eff(&[
                ("max-size", "4k"),
                ("max-file", "3"),
                ("compress", compress),
            ]);
            let mut w = Writer::open(&path, &e, BTreeMap::new()).unwrap().unwrap();
            let mut follower = Follower::at_end(&path);
            let mut followed = 0;
            for i in 0..2000 {
                w.write(Stream::Stdout, Utc::now(), format!("line {i}\n").as_bytes());
                if i % 7 == 0 {
                    followed += follower.poll().unwrap().len();
                }
            }
            followed += follower.poll().unwrap().len();
            assert_eq!(followed, 2000, "the follower saw every line");
            let fs = files(&path);
            assert_eq!(fs.len(), 3);
            for f in &fs {
                assert!(std::fs::metadata(f).unwrap().len() <= 4096, "{f:?}");
            }
            let all = read_all(&path).unwrap();
            assert!(!all.is_empty());
            assert_eq!(all.last().unwrap().data, b"line 1999\n");
            // Oldest first, consecutive.
            let first: usize = String::from_utf8_lossy(&all[0].data)
                .trim()
                .strip_prefix("line ")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(all.len(), 2000 - first);
        }
    }

    #[test]
    fn attrs_from_labels_and_env() {
        let e = eff(&[("labels", "team"), ("env", "STAGE")]);
        let labels = [("team".to_string(), "a".to_string())].into();
        let env = vec!["STAGE=prod".to_string(), "STAGEX=no".to_string()];
        let attrs = attrs_for(&e, &labels, &env);
        assert_eq!(attrs.get("team").unwrap(), "a");
        assert_eq!(attrs.get("STAGE").unwrap(), "prod");
        let mut out = Vec::new();
        let entry = Entry {
            time: Utc::now(),
            stream: Stream::Stdout,
            data: b"x\n".to_vec(),
            attrs,
        };
        print_entry(&mut out, &entry, false, true).unwrap();
        assert_eq!(out, b"STAGE=prod,team=a x\n");
    }
}
