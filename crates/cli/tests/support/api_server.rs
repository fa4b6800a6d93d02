//! `berth serve` for tests: a server on a socket of the test's own, the
//! docker CLI pointed at it, and raw HTTP requests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// A running `berth serve` on a socket of the test's own.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
}

impl Server {
    pub fn start(b: &Berth) -> Server {
        let socket = b.path().join("docker.sock");
        let child = b
            .cmd()
            .args(["serve", "-H", &format!("unix://{}", socket.display())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if UnixStream::connect(&socket).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        Server { child, socket }
    }

    /// The docker CLI pointed at the server.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(["-H", &format!("unix://{}", self.socket.display())])
            .args(args)
            .env(
                "DOCKER_CONFIG",
                self.socket.with_file_name("docker-cli-config"),
            )
            .stdin(Stdio::null())
            .output()
            .expect("the docker CLI (Debian's docker.io)")
    }

    /// The docker CLI with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> std::process::Output {
        let mut cmd = Command::new("docker");
        cmd.args(["-H", &format!("unix://{}", self.socket.display())])
            .args(args)
            .env(
                "DOCKER_CONFIG",
                self.socket.with_file_name("docker-cli-config"),
            );
        feed(cmd, input)
    }

    /// The docker CLI on a terminal (util-linux `script`), `input` typed
    /// into it; the terminal's output and the CLI's exit code.
    pub fn docker_tty(&self, args: &str, input: &[u8]) -> (String, i32) {
        let line = format!(
            "stty cols 100 rows 30; exec docker -H unix://{} {args}",
            self.socket.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]).env(
            "DOCKER_CONFIG",
            self.socket.with_file_name("docker-cli-config"),
        );
        let o = feed(cmd, input);
        (stdout(&o), code(&o))
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
        stdout(&o)
    }

    /// One raw request: (status, headers, body).
    pub fn http(&self, method: &str, path: &str) -> (u16, String, String) {
        http(&self.socket, method, path)
    }

    /// SIGTERM, and wait for it to end.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http(socket: &Path, method: &str, path: &str) -> (u16, String, String) {
    http_json(socket, method, path, "")
}

/// One request with a JSON body: (status, headers, body).
pub fn http_json(socket: &Path, method: &str, path: &str, json: &str) -> (u16, String, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    let body_head = if json.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            json.len()
        )
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n{body_head}\r\n{json}"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Small bodies come in one chunk: take the chunk's data.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split_once("\r\n")
            .map(|(_, rest)| rest.trim_end_matches("\r\n0\r\n\r\n").to_string())
            .unwrap_or_default()
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// A hijacked request (`Upgrade: tcp`, as the docker CLI's attach and
/// exec start): the status and the raw stream after the headers.
pub fn upgrade(socket: &Path, path: &str, body: &str) -> (u16, UnixStream) {
    let mut s = UnixStream::connect(socket).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, s)
}
