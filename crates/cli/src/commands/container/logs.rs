//! `logs`.

use std::io::Write;

use chrono::Utc;
use clap::Args;
use engine::Engine;

use crate::Failure;

use super::bad;

/// `logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow the output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines from the end (or "all").
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show the extra attributes given with --log-opt labels=/env=.
    #[arg(long)]
    details: bool,
    /// Only logs since a timestamp (RFC 3339) or a relative time (10m, 1h).
    #[arg(long)]
    since: Option<String>,
    /// Only logs before a timestamp (RFC 3339) or a relative time (10m, 1h).
    #[arg(long)]
    until: Option<String>,
    /// Container.
    container: String,
}

/// A `--since`/`--until` value: RFC 3339, Unix seconds, or a duration
/// before now (`10m`, `1h30m`, `90s`).
pub fn parse_time(flag: &str, s: &str) -> Result<chrono::DateTime<Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        return chrono::DateTime::from_timestamp(whole, nanos).ok_or_else(|| bad(flag, s));
    }
    match engine::health::parse_duration(s) {
        Ok(ns) => Ok(Utc::now() - chrono::Duration::nanoseconds(ns)),
        Err(_) => Err(bad(
            flag,
            format!("{s:?}: use a timestamp (2006-01-02T15:04:05Z), Unix seconds or a duration like 10m"),
        )),
    }
}

/// `logs`.
pub fn logs(engine: &Engine, a: LogsArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    if c.config.log_config.driver() == "none" {
        // dockerd's refusal (the container keeps no logs to read).
        return Err(Failure::msg(
            1,
            "configured logging driver does not support reading",
        ));
    }
    let path = engine.container_log(&c);
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time("--since", s))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time("--until", s))
        .transpose()?;
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| bad("--tail", format!("{n:?}: a number or \"all\"")))?,
        ),
    };
    // The follower goes on where the read ends: nothing written meanwhile
    // is missed or shown twice.
    let (mut entries, mut follower) = if a.follow {
        let (entries, follower) = engine::logs::read_and_follow(&path)?;
        (entries, Some(follower))
    } else {
        (engine::logs::read_all(&path)?, None)
    };
    entries.retain(|e| since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time < u));
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let emit = |e: &engine::logs::Entry| {
        let _ = match e.stream {
            engine::logs::Stream::Stdout => {
                engine::logs::print_entry(&mut stdout.lock(), e, a.timestamps, a.details)
            }
            engine::logs::Stream::Stderr => {
                engine::logs::print_entry(&mut stderr.lock(), e, a.timestamps, a.details)
            }
        };
    };
    for e in &entries {
        emit(e);
    }
    let Some(follower) = follower.as_mut() else {
        return Ok(());
    };
    if until.is_some_and(|u| u <= Utc::now()) {
        return Ok(());
    }
    loop {
        let new = follower.poll()?;
        for e in &new {
            if until.is_some_and(|u| e.time >= u) {
                return Ok(());
            }
            emit(e);
        }
        let _ = std::io::stdout().flush();
        if new.is_empty() {
            let running = engine
                .container(c.id().as_str())
                .map(|c| c.is_running() || c.state.status == engine::config::Status::Restarting)
                .unwrap_or(false);
            if !running || until.is_some_and(|u| u <= Utc::now()) {
                // One last read: output written just before the exit.
                for e in follower.poll()? {
                    emit(&e);
                }
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// `-f` over several containers' logs (`compose logs -f`, `pod logs -f`):
/// print what each follower (one per container of `ids`) gets, lines at or
/// after `until` left out, until none of those containers runs or
/// restarts; then what is left. Ctrl-C ends it with 130.
pub fn follow_logs(
    engine: &engine::Engine,
    ids: &[&str],
    followers: &mut [engine::logs::Follower],
    until: Option<chrono::DateTime<Utc>>,
    mut print: impl FnMut(usize, &engine::logs::Entry),
) -> Result<(), Failure> {
    use std::io::Write;
    let signals = crate::terminal::Interrupts::catch();
    let wanted = |e: &engine::logs::Entry| until.is_none_or(|u| e.time < u);
    loop {
        let mut any = false;
        for (i, f) in followers.iter_mut().enumerate() {
            for e in f.poll().unwrap_or_default().iter().filter(|e| wanted(e)) {
                any = true;
                print(i, e);
            }
        }
        let _ = std::io::stdout().flush();
        if any {
            continue;
        }
        let running = ids.iter().any(|id| {
            engine.container(id).is_ok_and(|c| {
                c.is_running() || c.state.status == engine::config::Status::Restarting
            })
        });
        if !running || until.is_some_and(|u| u <= Utc::now()) {
            for (i, f) in followers.iter_mut().enumerate() {
                for e in f.poll().unwrap_or_default().iter().filter(|e| wanted(e)) {
                    print(i, e);
                }
            }
            return Ok(());
        }
        if signals.wait(std::time::Duration::from_millis(100)) {
            return Err(Failure::silent(130));
        }
    }
}
