//! `berth build --progress=tty`: a live view of the build, redrawn in
//! place like BuildKit's. The builder writes its plain progress lines
//! (`#N [stage i/n] …`, `#N 0.12 output`, `#N DONE 0.3s`, `#N CACHED`)
//! into a pipe; a forked renderer reads them and keeps the terminal's
//! last lines as a live area: the running steps with their times ticking
//! and the last lines of their output. A finished step is printed above
//! that area for good, so the final screen lists every step.
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

/// Output lines shown under a running step.
const TAIL: usize = 4;
/// The last line the builder writes: the renderer stops at it (a process
/// that still holds the pipe cannot keep it waiting).
const END: &str = "#end";

/// The running renderer: the builder writes into `writer`.
pub struct TtyView {
    pid: i32,
    /// The pipe to the renderer.
    pub writer: std::fs::File,
}

impl TtyView {
    /// Fork the renderer, drawing on stderr. None if this process cannot
    /// fork safely (then the caller prints plain lines).
    pub fn start() -> Option<TtyView> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let _ = std::io::stderr().flush();
        match engine::term::fork().ok()? {
            engine::term::Forked::Child => {
                drop(w);
                render(r);
                let _ = std::io::stderr().flush();
                engine::term::exit_now(0)
            }
            engine::term::Forked::Parent(pid) => {
                drop(r);
                Some(TtyView {
                    pid,
                    writer: std::fs::File::from(w),
                })
            }
        }
    }

    /// Tell the renderer the build is over and wait for its last drawing.
    pub fn finish(mut self) {
        let _ = writeln!(self.writer, "{END}");
        drop(self.writer);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Running,
    Done(f64),
    Cached,
}

#[derive(Debug)]
struct Step {
    label: String,
    started: Instant,
    state: State,
    tail: VecDeque<String>,
}

/// What the view knows, and how to draw it.
#[derive(Debug)]
pub(crate) struct View {
    steps: BTreeMap<usize, Step>,
    started: Instant,
    width: usize,
    /// Lines of the live area on the screen now.
    drawn: usize,
}

/// One line of the builder's plain progress.
#[derive(Debug, PartialEq)]
pub(crate) enum Event<'a> {
    Start(usize, &'a str),
    Done(usize, f64),
    Cached(usize),
    Output(usize, &'a str),
    Log(&'a str),
}

pub(crate) fn parse(line: &str) -> Event<'_> {
    let Some(rest) = line.strip_prefix('#') else {
        return Event::Log(line);
    };
    let (n, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let Ok(n) = n.parse::<usize>() else {
        return Event::Log(line);
    };
    if text.starts_with('[') {
        return Event::Start(n, text);
    }
    if text == "CACHED" {
        return Event::Cached(n);
    }
    if let Some(secs) = text
        .strip_prefix("DONE ")
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse::<f64>().ok())
    {
        return Event::Done(n, secs);
    }
    // `#N <seconds> <line>`: a RUN step's output.
    let out = match text.split_once(' ') {
        Some((t, rest)) if t.parse::<f64>().is_ok() => rest,
        _ if text.parse::<f64>().is_ok() => "",
        _ => text,
    };
    Event::Output(n, out)
}

/// At most `n` characters (a line that wraps would break the redraw).
fn fit(s: &str, n: usize) -> String {
    let printable: String = s.chars().filter(|c| !c.is_control()).collect();
    if printable.chars().count() <= n {
        return printable;
    }
    printable
        .chars()
        .take(n.saturating_sub(1))
        .collect::<String>()
        + "…"
}

impl View {
    pub(crate) fn new(width: usize) -> View {
        View {
            steps: BTreeMap::new(),
            started: Instant::now(),
            width: width.max(40),
            drawn: 0,
        }
    }

    fn step_line(&self, s: &Step) -> String {
        let (prefix, secs) = match s.state {
            State::Cached => ("CACHED ", None),
            State::Done(t) => ("", Some(t)),
            State::Running => ("", Some(s.started.elapsed().as_secs_f64())),
        };
        let time = secs.map(|t| format!("{t:.1}s")).unwrap_or_default();
        let room = self.width.saturating_sub(6 + time.len() + 1);
        let label = fit(&format!("{prefix}{}", s.label), room);
        format!(" => {label:<room$} {time:>w$}", w = time.len())
    }

    /// Apply one line; what to print for good above the live area.
    pub(crate) fn apply(&mut self, line: &str) -> Vec<String> {
        match parse(line) {
            Event::Start(n, label) => {
                self.steps.insert(
                    n,
                    Step {
                        label: label.to_string(),
                        started: Instant::now(),
                        state: State::Running,
                        tail: VecDeque::new(),
                    },
                );
                Vec::new()
            }
            Event::Done(n, secs) => self.finish(n, State::Done(secs)),
            Event::Cached(n) => self.finish(n, State::Cached),
            Event::Output(n, text) => {
                if let Some(s) = self.steps.get_mut(&n) {
                    s.tail.push_back(text.to_string());
                    if s.tail.len() > TAIL {
                        s.tail.pop_front();
                    }
                }
                Vec::new()
            }
            Event::Log(text) => vec![fit(text, self.width - 1)],
        }
    }

    fn finish(&mut self, n: usize, state: State) -> Vec<String> {
        match self.steps.get_mut(&n) {
            Some(s) => {
                s.state = state;
                s.tail.clear();
                let s = &self.steps[&n];
                vec![self.step_line(s)]
            }
            None => Vec::new(),
        }
    }

    /// The live area: a header, then each running step and its output.
    pub(crate) fn live(&self) -> Vec<String> {
        let done = self
            .steps
            .values()
            .filter(|s| s.state != State::Running)
            .count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{})",
            self.started.elapsed().as_secs_f64(),
            self.steps.len()
        )];
        for s in self.steps.values().filter(|s| s.state == State::Running) {
            lines.push(self.step_line(s));
            for t in &s.tail {
                lines.push(fit(&format!(" => => # {t}"), self.width - 1));
            }
        }
        lines
    }

    /// Steps still running when the build stopped (it failed).
    pub(crate) fn unfinished(&self) -> Vec<String> {
        self.steps
            .values()
            .filter(|s| s.state == State::Running)
            .map(|s| {
                let line = self.step_line(s);
                line.replacen(" => ", " => ERROR ", 1)
            })
            .collect()
    }

    /// Erase the live area, print `lines` for good, draw the live area.
    fn redraw(&mut self, out: &mut impl Write, lines: &[String], live: bool) {
        let mut buf = String::new();
        if self.drawn > 0 {
            buf.push_str(&format!("\x1b[{}A", self.drawn));
        }
        buf.push_str("\r\x1b[J");
        for l in lines {
            buf.push_str(l);
            buf.push('\n');
        }
        self.drawn = 0;
        if live {
            for l in self.live() {
                buf.push_str(&l);
                buf.push('\n');
                self.drawn += 1;
            }
        }
        let _ = out.write_all(buf.as_bytes());
        let _ = out.flush();
    }
}

/// The renderer's loop: read progress lines until END (or the pipe
/// closes), redrawing at least every 100 ms.
fn render(input: OwnedFd) {
    let stderr = std::io::stderr();
    let width = engine::term::get_winsize(stderr.as_fd())
        .map(|w| w.cols as usize)
        .ok()
        .filter(|&c| c > 0)
        .unwrap_or(80);
    let mut out = stderr.lock();
    let mut view = View::new(width);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut last_draw = Instant::now();
    loop {
        let mut fds = [nix::poll::PollFd::new(
            input.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0);
        let mut permanent = Vec::new();
        let mut ended = false;
        if ready > 0 {
            match nix::unistd::read(&input, &mut buf) {
                Ok(0) | Err(_) => ended = true,
                Ok(k) => pending.extend_from_slice(&buf[..k]),
            }
            while let Some(p) = pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = pending.drain(..=p).collect();
                let line = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
                if line == END {
                    ended = true;
                    break;
                }
                permanent.extend(view.apply(&line));
            }
        }
        if ended {
            permanent.extend(view.unfinished());
            view.redraw(&mut out, &permanent, false);
            return;
        }
        if !permanent.is_empty() || last_draw.elapsed().as_millis() >= 100 {
            view.redraw(&mut out, &permanent, true);
            last_draw = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_parse() {
        assert_eq!(
            parse("#3 [deps 2/4] COPY big/ /big/"),
            Event::Start(3, "[deps 2/4] COPY big/ /big/")
        );
        assert_eq!(parse("#3 DONE 0.3s"), Event::Done(3, 0.3));
        assert_eq!(parse("#12 CACHED"), Event::Cached(12));
        assert_eq!(
            parse("#4 0.125 hello world"),
            Event::Output(4, "hello world")
        );
        assert_eq!(parse("#4 0.125"), Event::Output(4, ""));
        assert_eq!(parse("WARN: something"), Event::Log("WARN: something"));
        assert_eq!(parse("#x y"), Event::Log("#x y"));
    }

    #[test]
    fn the_view_keeps_running_steps_live_and_prints_finished_ones() {
        let mut v = View::new(60);
        assert!(v.apply("#1 [one 1/2] FROM bb").is_empty());
        assert!(v.apply("#2 [one 2/2] RUN make").is_empty());
        for i in 0..6 {
            v.apply(&format!("#2 0.{i} line {i}"));
        }
        let done = v.apply("#1 DONE 0.0s");
        assert_eq!(done.len(), 1);
        assert!(done[0].starts_with(" => [one 1/2] FROM bb"), "{done:?}");
        assert!(done[0].ends_with("0.0s") && done[0].chars().count() <= 60);
        let live = v.live();
        assert!(live[0].starts_with("[+] Building ") && live[0].ends_with("(1/2)"));
        assert!(live[1].starts_with(" => [one 2/2] RUN make"));
        // The last lines of its output, not the first.
        assert_eq!(
            &live[2..],
            [
                " => => # line 2",
                " => => # line 3",
                " => => # line 4",
                " => => # line 5"
            ]
        );
        assert_eq!(v.unfinished().len(), 1);
        assert!(v.unfinished()[0].starts_with(" => ERROR [one 2/2]"));
        let cached = v.apply("#2 CACHED");
        assert!(cached[0].starts_with(" => CACHED [one 2/2] RUN make"));
        assert_eq!(v.live().len(), 1);
        assert_eq!(v.apply("note: x"), ["note: x"]);
    }
}
