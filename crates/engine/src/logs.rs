//! The container log file: one line per chunk of output, in the CRI
//! format `<RFC 3339 nano timestamp> <stdout|stderr> <F|P> <data>`, where
//! `P` marks a partial line continued by the next entry. Written by the
//! monitor, read by `berth logs`.
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

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

/// Format a chunk of output into log entries, appended to `out`.
pub fn format_chunk(out: &mut Vec<u8>, stream: Stream, now: DateTime<Utc>, data: &[u8]) {
    let ts = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut rest = data;
    while !rest.is_empty() {
        let (line, tag, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], "F", &rest[i + 1..]),
            None => (rest, "P", &rest[rest.len()..]),
        };
        out.extend_from_slice(ts.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        out.extend_from_slice(line);
        out.push(b'\n');
        rest = next;
    }
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
}

/// Incremental parser: feed raw file lines, get complete entries.
#[derive(Default)]
pub struct Parser {
    pending: [Option<Entry>; 2],
}

impl Parser {
    /// Parse one line of the log file (without its `\n`).
    pub fn feed(&mut self, line: &[u8]) -> Option<Entry> {
        let mut parts = line.splitn(4, |&b| b == b' ');
        let ts = std::str::from_utf8(parts.next()?).ok()?;
        let stream = match parts.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let tag = parts.next()?;
        let data = parts.next().unwrap_or_default();
        let time = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
        let slot = &mut self.pending[stream as usize];
        let entry = slot.get_or_insert_with(|| Entry {
            time,
            stream,
            data: Vec::new(),
        });
        entry.data.extend_from_slice(data);
        if tag == b"F" {
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

/// Read every complete entry of a log file.
pub fn read_all(path: &Path) -> std::io::Result<Vec<Entry>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut parser = Parser::default();
    let mut out = Vec::new();
    let mut reader = BufReader::new(f);
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
    out.extend(parser.flush());
    Ok(out)
}

/// Write an entry for the user, with the timestamp prefix when asked.
pub fn print_entry(w: &mut impl Write, e: &Entry, timestamps: bool) -> std::io::Result<()> {
    if timestamps {
        write!(w, "{} ", e.time.to_rfc3339_opts(SecondsFormat::Nanos, true))?;
    }
    w.write_all(&e.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lines_and_partials() {
        let now = Utc::now();
        let mut buf = Vec::new();
        format_chunk(&mut buf, Stream::Stdout, now, b"hello\nwor");
        format_chunk(&mut buf, Stream::Stderr, now, b"oops\n");
        format_chunk(&mut buf, Stream::Stdout, now, b"ld\n");
        let mut p = Parser::default();
        let got: Vec<Entry> = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| p.feed(l))
            .collect();
        let texts: Vec<(Stream, String)> = got
            .iter()
            .map(|e| (e.stream, String::from_utf8_lossy(&e.data).into_owned()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (Stream::Stdout, "hello\n".to_string()),
                (Stream::Stderr, "oops\n".to_string()),
                (Stream::Stdout, "world\n".to_string()),
            ]
        );
    }

    #[test]
    fn data_with_spaces_survives() {
        let mut buf = Vec::new();
        format_chunk(&mut buf, Stream::Stdout, Utc::now(), b"a b  c\n");
        let line = &buf[..buf.len() - 1];
        let e = Parser::default().feed(line).unwrap();
        assert_eq!(e.data, b"a b  c\n");
    }
}
