//! The Rust Docker API client `bollard` against `berth serve` (root):
//! containers attached to, logs followed, execs with their exit codes,
//! files copied in and out, an image built from a tar context, pushed to
//! and pulled back from Debian's docker-registry on 127.0.0.1 with
//! credentials, networks, volumes and the events they make. bollard
//! negotiates its API version from `/version` as a real program would.
//! Each test ends with nothing of its containers left on the host.
#[path = "support/api_server.rs"]
mod api_server;
mod common;
#[path = "support/registry.rs"]
mod registry;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api_server::*;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, EventMessage, HostConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters::*;
use bollard::{body_full, Docker};
use common::*;
use futures_util::{Stream, StreamExt, TryStreamExt};
use registry::Registry;
use tokio::io::AsyncWriteExt;

/// bollard on the server's socket, its version negotiated from `/version`.
async fn connect(srv: &Server) -> Docker {
    let docker = Docker::connect_with_unix(
        &format!("unix://{}", srv.socket.display()),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
    .negotiate_version()
    .await
    .unwrap();
    let v = docker.client_version();
    assert_eq!(
        (v.major_version, v.minor_version),
        (1, 44),
        "bollard negotiated {v:?}"
    );
    docker
}

/// A demultiplexed stream read to its end: (stdout, stderr, tty console).
async fn drain(
    mut s: impl Stream<Item = Result<LogOutput, Error>> + Unpin,
) -> (String, String, String) {
    let (mut out, mut err, mut console) = (Vec::new(), Vec::new(), Vec::new());
    let read = async {
        while let Some(item) = s.next().await {
            match item.unwrap() {
                LogOutput::StdOut { message } => out.extend_from_slice(&message),
                LogOutput::StdErr { message } => err.extend_from_slice(&message),
                LogOutput::Console { message } => console.extend_from_slice(&message),
                LogOutput::StdIn { message } => panic!("stdin frame {message:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the stream did not end in 60s");
    let s = |v: Vec<u8>| String::from_utf8(v).unwrap();
    (s(out), s(err), s(console))
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

/// Create container `name` from `body` (image `bb:test` unless it says).
async fn create(docker: &Docker, name: &str, mut body: ContainerCreateBody) -> String {
    body.image.get_or_insert_with(|| IMAGE.to_string());
    let opts = CreateContainerOptionsBuilder::default().name(name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
        .id
}

/// `cmd` exec'd in `container` with its output attached: (stdout,
/// stderr, exit code).
async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> (String, String, i64) {
    exec_with(
        docker,
        container,
        CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        },
        None,
    )
    .await
}

async fn exec_with(
    docker: &Docker,
    container: &str,
    opts: CreateExecOptions<&str>,
    input: Option<&[u8]>,
) -> (String, String, i64) {
    let id = docker.create_exec(container, opts).await.unwrap().id;
    let StartExecResults::Attached {
        output,
        input: mut stdin,
    } = docker.start_exec(&id, None).await.unwrap()
    else {
        panic!("exec {id} started detached");
    };
    if let Some(data) = input {
        stdin.write_all(data).await.unwrap();
        stdin.shutdown().await.unwrap();
    }
    let (out, err, console) = drain(output).await;
    let (out, err) = if console.is_empty() {
        (out, err)
    } else {
        (console, err)
    };
    // The stream ends when the process does; its exit code is recorded
    // by then or very soon after.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let i = docker.inspect_exec(&id).await.unwrap();
        if i.running == Some(false) {
            return (out, err, i.exit_code.expect("an ended exec has a code"));
        }
        assert!(Instant::now() < deadline, "exec {id} still running: {i:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `wait` on `id`: its exit code (bollard turns a non-zero one into an
/// error carrying it).
async fn wait(docker: &Docker, id: &str) -> i64 {
    let mut s = docker.wait_container(id, None::<WaitContainerOptions>);
    match tokio::time::timeout(Duration::from_secs(60), s.next())
        .await
        .expect("wait did not answer in 60s")
    {
        Some(Ok(r)) => r.status_code,
        Some(Err(Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("wait {id}: {other:?}"),
    }
}

async fn logs(docker: &Docker, id: &str, opts: LogsOptions) -> (String, String) {
    let (out, err, console) = drain(docker.logs(id, Some(opts))).await;
    assert_eq!(console, "");
    (out, err)
}

async fn remove(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    docker.remove_container(id, Some(opts)).await.unwrap();
}

/// The server's status and message for a failed call.
fn server_error<T: std::fmt::Debug>(r: Result<T, Error>) -> (u16, String) {
    match r {
        Err(Error::DockerResponseServerError {
            status_code,
            message,
        }) => (status_code, message),
        other => panic!("expected an error answer, got {other:?}"),
    }
}

/// After the test: the server stopped, nothing of `ids` on the host.
fn assert_clean(b: &Berth, srv: Server, ids: &[String]) {
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "", "containers left");
    assert!(srv.stop().success(), "berth serve did not end cleanly");
    assert_eq!(leftovers(b, ids), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_attaches_follows_logs_and_execs() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let docker = connect(&srv).await;
    let mut ids = Vec::new();

    let version = docker.version().await.unwrap();
    assert_eq!(version.api_version.as_deref(), Some("1.44"));
    assert_eq!(docker.ping().await.unwrap(), "OK");

    // Attached before start, stdin included: the container reads a line
    // from it, and ends when stdin closes (StdinOnce).
    let talker = create(
        &docker,
        "talker",
        ContainerCreateBody {
            cmd: strings(&[
                "sh",
                "-c",
                "echo out1; echo err1 >&2; read line; echo \"got $line\"; cat; echo done; exit 3",
            ]),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        },
    )
    .await;
    ids.push(talker.clone());
    let opts = AttachContainerOptionsBuilder::default()
        .stream(true)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut attached = docker.attach_container("talker", Some(opts)).await.unwrap();
    docker
        .start_container("talker", None::<StartContainerOptions>)
        .await
        .unwrap();
    attached.input.write_all(b"hello\nrest\n").await.unwrap();
    attached.input.shutdown().await.unwrap();
    let (out, err, console) = drain(attached.output).await;
    assert_eq!(
        (out.as_str(), err.as_str(), console.as_str()),
        ("out1\ngot hello\nrest\ndone\n", "err1\n", "")
    );
    assert_eq!(wait(&docker, "talker").await, 3);
    let state = docker
        .inspect_container("talker", None::<InspectContainerOptions>)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!((state.running, state.exit_code), (Some(false), Some(3)));

    // Its logs, demultiplexed; the last line only; stderr only.
    let all = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    assert_eq!(
        logs(&docker, "talker", all).await,
        (
            "out1\ngot hello\nrest\ndone\n".to_string(),
            "err1\n".to_string()
        )
    );
    let tail = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail("1")
        .build();
    assert_eq!(
        logs(&docker, "talker", tail).await,
        ("done\n".to_string(), String::new())
    );
    let only_err = LogsOptionsBuilder::default().stderr(true).build();
    assert_eq!(
        logs(&docker, "talker", only_err).await,
        (String::new(), "err1\n".to_string())
    );

    // Logs followed from before the first line: every line as it comes,
    // and the stream ends when the container does.
    let ticker = create(
        &docker,
        "ticker",
        ContainerCreateBody {
            cmd: strings(&[
                "sh",
                "-c",
                "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done; echo bye >&2",
            ]),
            ..Default::default()
        },
    )
    .await;
    ids.push(ticker.clone());
    docker
        .start_container("ticker", None::<StartContainerOptions>)
        .await
        .unwrap();
    let follow = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    assert_eq!(
        logs(&docker, &ticker, follow).await,
        (
            "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n".to_string(),
            "bye\n".to_string()
        )
    );
    assert_eq!(wait(&docker, &ticker).await, 0);

    // Execs in a running container: output, exit code, user, directory,
    // environment, stdin, a terminal.
    let sleeper = create(
        &docker,
        "sleeper",
        ContainerCreateBody {
            cmd: strings(&["sleep", "300"]),
            ..Default::default()
        },
    )
    .await;
    ids.push(sleeper.clone());
    docker
        .start_container("sleeper", None::<StartContainerOptions>)
        .await
        .unwrap();
    assert_eq!(
        exec(
            &docker,
            "sleeper",
            &["sh", "-c", "echo exec-out; echo exec-err >&2; exit 7"]
        )
        .await,
        ("exec-out\n".to_string(), "exec-err\n".to_string(), 7)
    );
    let opts = CreateExecOptions {
        cmd: Some(vec!["sh", "-c", "id -u; pwd; echo $FOO"]),
        user: Some("app"),
        working_dir: Some("/home/app"),
        env: Some(vec!["FOO=bar"]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    assert_eq!(
        exec_with(&docker, "sleeper", opts, None).await,
        ("1000\n/home/app\nbar\n".to_string(), String::new(), 0)
    );
    let opts = CreateExecOptions {
        cmd: Some(vec!["sh", "-c", "tr a-z A-Z; exit 2"]),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    assert_eq!(
        exec_with(&docker, "sleeper", opts, Some(b"piped in\n")).await,
        ("PIPED IN\n".to_string(), String::new(), 2)
    );
    let opts = CreateExecOptions {
        cmd: Some(vec!["sh", "-c", "tty; echo on-tty"]),
        tty: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let (out, err, code) = exec_with(&docker, "sleeper", opts, None).await;
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("/dev/pts/0\r\non-tty\r\n", "", 0)
    );
    // An exec in a container that is not running: dockerd's 409.
    let (status, message) = server_error(
        docker
            .create_exec(
                "ticker",
                CreateExecOptions {
                    cmd: Some(vec!["true"]),
                    ..Default::default()
                },
            )
            .await,
    );
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("is not running"), "{message}");

    // Stop: sleep as pid 1 ignores SIGTERM, so SIGKILL after the timeout.
    let opts = StopContainerOptionsBuilder::default().t(1).build();
    docker.stop_container("sleeper", Some(opts)).await.unwrap();
    assert_eq!(wait(&docker, "sleeper").await, 137);

    let (status, message) = server_error(
        docker
            .inspect_container("nosuch", None::<InspectContainerOptions>)
            .await,
    );
    assert_eq!(
        (status, message.as_str()),
        (404, "No such container: nosuch")
    );

    for id in &ids {
        remove(&docker, id).await;
    }
    let all = ListContainersOptionsBuilder::default().all(true).build();
    assert!(docker.list_containers(Some(all)).await.unwrap().is_empty());
    assert_clean(&b, srv, &ids);
}

/// A tar of `files`: (path, mode, content); a path ending in `/` is a
/// directory, content `->target` a symlink.
fn tar_of(files: &[(&str, u32, &str)]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (path, mode, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            t.append_data(&mut h, path, &[][..]).unwrap();
        } else if let Some(target) = content.strip_prefix("->") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            t.append_link(&mut h, path, target).unwrap();
        } else {
            h.set_size(content.len() as u64);
            t.append_data(&mut h, path, content.as_bytes()).unwrap();
        }
    }
    t.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_copies_files_in_and_out() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let docker = connect(&srv).await;
    let boxed = create(
        &docker,
        "box",
        ContainerCreateBody {
            cmd: strings(&["sleep", "300"]),
            ..Default::default()
        },
    )
    .await;

    // Into a container that was created and not started yet.
    let context = tar_of(&[
        ("data/", 0o755, ""),
        ("data/hello.txt", 0o640, "hello from bollard\n"),
        ("data/link", 0o777, "->hello.txt"),
    ]);
    let opts = UploadToContainerOptionsBuilder::default()
        .path("/tmp")
        .build();
    docker
        .upload_to_container("box", Some(opts), body_full(context.into()))
        .await
        .unwrap();
    docker
        .start_container("box", None::<StartContainerOptions>)
        .await
        .unwrap();
    assert_eq!(
        exec(
            &docker,
            "box",
            &[
                "sh",
                "-c",
                "stat -c '%a %s %u' /tmp/data/hello.txt; cat /tmp/data/link"
            ]
        )
        .await,
        (
            "640 19 0\nhello from bollard\n".to_string(),
            String::new(),
            0
        )
    );
    let opts = ContainerArchiveInfoOptionsBuilder::default()
        .path("/tmp/data/hello.txt")
        .build();
    let stat = docker
        .get_container_archive_info("box", Some(opts))
        .await
        .unwrap();
    assert_eq!(
        (stat.name.as_str(), stat.size, stat.file_mode & 0o777),
        ("hello.txt", 19, 0o640)
    );

    // Out of it: a directory the container made, as a tar.
    let (_, _, code) = exec(
        &docker,
        "box",
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/out/sub && echo made > /tmp/out/made.txt && printf x > /tmp/out/sub/x && chmod 600 /tmp/out/made.txt",
        ],
    )
    .await;
    assert_eq!(code, 0);
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path("/tmp/out")
        .build();
    let bytes: Vec<u8> = docker
        .download_from_container("box", Some(opts))
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut got = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mode = entry.header().mode().unwrap() & 0o7777;
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
        got.push((path, mode, content));
    }
    got.sort();
    let want: Vec<(String, u32, String)> = [
        ("out", 0o755, ""),
        ("out/made.txt", 0o600, "made\n"),
        ("out/sub", 0o755, ""),
        ("out/sub/x", 0o644, "x"),
    ]
    .iter()
    .map(|(p, m, c)| (p.trim_end_matches('/').to_string(), *m, c.to_string()))
    .collect();
    let got: Vec<(String, u32, String)> = got
        .into_iter()
        .map(|(p, m, c)| (p.trim_end_matches('/').to_string(), m, c))
        .collect();
    assert_eq!(got, want);

    // A path that is not there: dockerd's 404 and message.
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path("/nosuch")
        .build();
    let r: Result<Vec<_>, Error> = docker
        .download_from_container("box", Some(opts))
        .try_collect()
        .await;
    let (status, message) = server_error(r);
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("/nosuch"), "{message}");

    remove(&docker, "box").await;
    assert_clean(&b, srv, &[boxed]);
}

/// A build from `context`: the stream's text and the image id, or the
/// error the stream ended with.
async fn build(docker: &Docker, tag: &str, context: Vec<u8>) -> Result<(String, String), String> {
    let opts = BuildImageOptionsBuilder::default().t(tag).rm(true).build();
    let mut s = docker.build_image(opts, None, Some(body_full(context.into())));
    let mut text = String::new();
    let mut id = None;
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                text.push_str(info.stream.as_deref().unwrap_or_default());
                if let Some(aux) = info.aux.and_then(|a| a.id) {
                    id = Some(aux);
                }
            }
            Err(Error::DockerStreamError { error }) => return Err(format!("{text}{error}")),
            Err(e) => panic!("build {tag}: {e}\n{text}"),
        }
    }
    Ok((text, id.expect("the build's aux id")))
}

/// A container from `image` run to its end: (stdout, exit code); removed.
async fn run_image(docker: &Docker, name: &str, image: &str) -> (String, i64) {
    let id = create(
        docker,
        name,
        ContainerCreateBody {
            image: Some(image.to_string()),
            ..Default::default()
        },
    )
    .await;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .unwrap();
    let code = wait(docker, &id).await;
    let opts = LogsOptionsBuilder::default().stdout(true).build();
    let (out, _) = logs(docker, &id, opts).await;
    remove(docker, &id).await;
    (out, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_builds_pushes_and_pulls_through_a_registry() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let docker = connect(&srv).await;
    let reg = Registry::start("bolt", "s3cret");

    // Built from a tar context.
    let context = tar_of(&[
        (
            "Dockerfile",
            0o644,
            "FROM bb:test\nCOPY greeting.txt /greeting.txt\nRUN echo built > /built.txt\nENV WHO=bollard\nCMD [\"sh\", \"-c\", \"cat /greeting.txt /built.txt; echo $WHO\"]\n",
        ),
        ("greeting.txt", 0o644, "hello\n"),
    ]);
    let (text, id) = build(&docker, "bollard/app:1", context).await.unwrap();
    assert!(text.contains("Step 1/5 : FROM bb:test"), "{text}");
    assert!(text.contains("Successfully tagged bollard/app:1"), "{text}");
    assert!(id.starts_with("sha256:"), "{id}");
    let inspect = docker.inspect_image("bollard/app:1").await.unwrap();
    assert_eq!(inspect.id.as_deref(), Some(id.as_str()));
    assert_eq!(
        run_image(&docker, "first", "bollard/app:1").await,
        ("hello\nbuilt\nbollard\n".to_string(), 0)
    );
    // A failing step ends the stream with dockerd's error.
    let bad = tar_of(&[("Dockerfile", 0o644, "FROM bb:test\nRUN exit 4\n")]);
    let err = build(&docker, "bollard/bad:1", bad).await.unwrap_err();
    assert!(err.contains("returned a non-zero code: 4"), "{err}");

    // Pushed with credentials; refused without.
    let remote = format!("{}/bollard/app", reg.addr);
    let opts = TagImageOptionsBuilder::default()
        .repo(&remote)
        .tag("1")
        .build();
    docker.tag_image("bollard/app:1", Some(opts)).await.unwrap();
    let creds = DockerCredentials {
        username: Some("bolt".to_string()),
        password: Some("s3cret".to_string()),
        serveraddress: Some(reg.addr.clone()),
        ..Default::default()
    };
    let opts = PushImageOptionsBuilder::default().tag("1").build();
    let denied: Result<Vec<_>, Error> = docker
        .push_image(&remote, Some(opts.clone()), None)
        .try_collect()
        .await;
    assert!(
        matches!(&denied, Err(Error::DockerStreamError { .. })),
        "a push without credentials: {denied:?}"
    );
    let pushed: Vec<_> = docker
        .push_image(&remote, Some(opts), Some(creds.clone()))
        .try_collect()
        .await
        .unwrap();
    let statuses: Vec<String> = pushed.iter().filter_map(|p| p.status.clone()).collect();
    assert!(
        statuses.iter().any(|s| s.contains("digest: sha256:")),
        "{statuses:?}"
    );

    // Both tags removed, then pulled back: the same image.
    for tag in ["bollard/app:1", &format!("{remote}:1")] {
        let gone = docker
            .remove_image(tag, None::<RemoveImageOptions>, None)
            .await
            .unwrap();
        assert!(
            gone.iter().any(|g| g.untagged.as_deref() == Some(tag)),
            "{gone:?}"
        );
    }
    let (status, _) = server_error(docker.inspect_image(&format!("{remote}:1")).await);
    assert_eq!(status, 404);
    let opts = CreateImageOptionsBuilder::default()
        .from_image(&remote)
        .tag("1")
        .build();
    let pulled: Vec<_> = docker
        .create_image(Some(opts), None, Some(creds))
        .try_collect()
        .await
        .unwrap();
    let statuses: Vec<String> = pulled.iter().filter_map(|p| p.status.clone()).collect();
    assert!(
        statuses
            .iter()
            .any(|s| s == &format!("Status: Downloaded newer image for {remote}:1")),
        "{statuses:?}"
    );
    let back = docker.inspect_image(&format!("{remote}:1")).await.unwrap();
    assert_eq!(back.id.as_deref(), Some(id.as_str()));
    assert_eq!(
        run_image(&docker, "second", &format!("{remote}:1")).await,
        ("hello\nbuilt\nbollard\n".to_string(), 0)
    );
    let mut filters = HashMap::new();
    filters.insert("reference", vec![remote.as_str()]);
    let opts = ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let listed = docker.list_images(Some(opts)).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].repo_tags, vec![format!("{remote}:1")]);

    drop(reg);
    assert_clean(&b, srv, &[]);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// (type, action, actor id, actor name, actor container) of each event.
type Seen = (String, String, String, String, String);

fn summary(events: &[EventMessage]) -> Vec<Seen> {
    events
        .iter()
        .map(|e| {
            let actor = e.actor.clone().unwrap_or_default();
            let attrs = actor.attributes.unwrap_or_default();
            let attr = |k: &str| attrs.get(k).cloned().unwrap_or_default();
            (
                e.typ.map(|t| t.to_string()).unwrap_or_default(),
                e.action.clone().unwrap_or_default(),
                actor.id.unwrap_or_default(),
                attr("name"),
                attr("container"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_networks_volumes_and_events() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let docker = connect(&srv).await;
    let since = now();

    // An event stream of container starts from `since` on, no end: the
    // past first, then each as it comes (bollard sends the request when
    // the stream is first read).
    let mut filters = HashMap::new();
    filters.insert("type", vec!["container"]);
    filters.insert("event", vec!["start"]);
    let opts = EventsOptionsBuilder::default()
        .since(&since.to_string())
        .filters(&filters)
        .build();
    let mut live = Box::pin(docker.events(Some(opts)));

    let net = docker
        .create_network(NetworkCreateRequest {
            name: "bnet".to_string(),
            driver: Some("bridge".to_string()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let mut labels = HashMap::new();
    labels.insert("made-by".to_string(), "bollard".to_string());
    let vol = docker
        .create_volume(VolumeCreateRequest {
            name: Some("bvol".to_string()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(vol.name, "bvol");
    assert_eq!(
        vol.labels.get("made-by").map(String::as_str),
        Some("bollard")
    );

    // A server on the network serving a file it wrote into the volume.
    let server = create(
        &docker,
        "server",
        ContainerCreateBody {
            cmd: strings(&[
                "sh",
                "-c",
                "echo from-volume > /data/index.html; exec httpd -f -p 8080 -h /data",
            ]),
            host_config: Some(HostConfig {
                network_mode: Some("bnet".to_string()),
                binds: strings(&["bvol:/data"]),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    docker
        .start_container("server", None::<StartContainerOptions>)
        .await
        .unwrap();
    let started = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("no start event in 10s")
        .unwrap()
        .unwrap();
    assert_eq!(
        summary(&[started]),
        [(
            "container".to_string(),
            "start".to_string(),
            server.clone(),
            "server".to_string(),
            String::new()
        )]
    );

    // A client on the default bridge, connected to bnet with an alias:
    // each finds the other by name.
    let client = create(
        &docker,
        "client",
        ContainerCreateBody {
            cmd: strings(&["sleep", "300"]),
            ..Default::default()
        },
    )
    .await;
    docker
        .start_container("client", None::<StartContainerOptions>)
        .await
        .unwrap();
    let started = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("no live start event in 10s")
        .unwrap()
        .unwrap();
    assert_eq!(
        summary(&[started]),
        [(
            "container".to_string(),
            "start".to_string(),
            client.clone(),
            "client".to_string(),
            String::new()
        )]
    );
    drop(live);
    docker
        .connect_network(
            "bnet",
            NetworkConnectRequest {
                container: "client".to_string(),
                endpoint_config: Some(EndpointSettings {
                    aliases: strings(&["buddy"]),
                    ..Default::default()
                }),
            },
        )
        .await
        .unwrap();
    let mut fetched = (String::new(), String::new(), -1);
    for _ in 0..50 {
        fetched = exec(&docker, "client", &["wget", "-qO-", "http://server:8080/"]).await;
        if fetched.2 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fetched, ("from-volume\n".to_string(), String::new(), 0));
    let (_, _, code) = exec(&docker, "server", &["ping", "-c", "1", "-W", "2", "buddy"]).await;
    assert_eq!(code, 0, "server could not reach client by its alias");
    let inspect = docker
        .inspect_network("bnet", None::<InspectNetworkOptions>)
        .await
        .unwrap();
    let members: Vec<String> = inspect
        .containers
        .unwrap_or_default()
        .keys()
        .cloned()
        .collect();
    assert!(
        members.contains(&server) && members.contains(&client),
        "{members:?}"
    );
    docker
        .disconnect_network(
            "bnet",
            NetworkDisconnectRequest {
                container: "client".to_string(),
                force: Some(false),
            },
        )
        .await
        .unwrap();
    let (_, _, code) = exec(
        &docker,
        "client",
        &["wget", "-qO-", "-T", "2", "http://server:8080/"],
    )
    .await;
    assert_ne!(code, 0, "client still reaches server after disconnect");

    // The volume read-only in a third container: readable, not writable.
    let reader = create(
        &docker,
        "reader",
        ContainerCreateBody {
            cmd: strings(&["sh", "-c", "cat /data/index.html; touch /data/x"]),
            host_config: Some(HostConfig {
                binds: strings(&["bvol:/data:ro"]),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    docker
        .start_container("reader", None::<StartContainerOptions>)
        .await
        .unwrap();
    assert_eq!(wait(&docker, "reader").await, 1);
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let (out, err) = logs(&docker, "reader", opts).await;
    assert_eq!(out, "from-volume\n");
    assert!(err.contains("Read-only file system"), "{err}");

    // A volume in use is not removed: dockerd's 409.
    let (status, message) = server_error(
        docker
            .remove_volume("bvol", None::<RemoveVolumeOptions>)
            .await,
    );
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("volume is in use"), "{message}");

    let ids = vec![server.clone(), client.clone(), reader.clone()];
    for id in &ids {
        remove(&docker, id).await;
    }
    docker
        .remove_volume("bvol", None::<RemoveVolumeOptions>)
        .await
        .unwrap();
    docker.remove_network("bnet").await.unwrap();
    let (status, _) = server_error(
        docker
            .inspect_network("bnet", None::<InspectNetworkOptions>)
            .await,
    );
    assert_eq!(status, 404);
    let (status, _) = server_error(docker.inspect_volume("bvol").await);
    assert_eq!(status, 404);

    // The past events, between since and until: the whole story in order.
    let until = now() + 1;
    let opts = EventsOptionsBuilder::default()
        .since(&since.to_string())
        .until(&until.to_string())
        .build();
    let events: Vec<EventMessage> = tokio::time::timeout(
        Duration::from_secs(20),
        docker.events(Some(opts)).try_collect(),
    )
    .await
    .expect("a bounded event stream did not end")
    .unwrap();
    let got = summary(&events);
    // The first event of `typ` and `action` whose actor is `id` (or is
    // named so), about `container` if given.
    let pos = |typ: &str, action: &str, id: &str, container: Option<&str>| {
        got.iter()
            .position(|(t, a, i, n, c)| {
                t == typ
                    && a == action
                    && (i == id || n == id)
                    && container.is_none_or(|want| c == want)
            })
            .unwrap_or_else(|| panic!("no {typ} {action} of {id} ({container:?}) in {got:#?}"))
    };
    let order = [
        pos("network", "create", &net, None),
        pos("volume", "create", "bvol", None),
        pos("container", "create", &server, None),
        // As dockerd: a start connects the container to its networks,
        // its end disconnects it.
        pos("network", "connect", &net, Some(&server)),
        pos("container", "start", &server, None),
        pos("container", "start", &client, None),
        pos("network", "connect", &net, Some(&client)),
        pos("network", "disconnect", &net, Some(&client)),
        pos("container", "die", &reader, None),
        pos("network", "disconnect", "bridge", Some(&reader)),
        pos("container", "destroy", &server, None),
        pos("volume", "destroy", "bvol", None),
        pos("network", "destroy", &net, None),
    ];
    let mut sorted = order;
    sorted.sort();
    assert_eq!(order, sorted, "events out of order: {got:#?}");
    let die = &events[pos("container", "die", &reader, None)];
    let attrs = die
        .actor
        .as_ref()
        .and_then(|a| a.attributes.clone())
        .unwrap_or_default();
    assert_eq!(attrs.get("exitCode").map(String::as_str), Some("1"));

    assert_clean(&b, srv, &ids);
}
