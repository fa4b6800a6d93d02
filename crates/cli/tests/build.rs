//! `berth build` (root): real builds from the busybox image, RUN steps as
//! real containers.
mod common;

use std::path::{Path, PathBuf};

use common::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn context(b: &Berth, dockerfile: &str) -> PathBuf {
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    write(&ctx, "Dockerfile", dockerfile);
    ctx
}

/// A tar of small files (a build context).
fn small_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, *data).unwrap();
    }
    t.into_inner().unwrap()
}

fn build(b: &Berth, args: &[&str]) -> (String, String) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let out = b.run(&all);
    assert!(
        out.status.success(),
        "build failed ({}): {}",
        out.status,
        stderr(&out)
    );
    (stdout(&out), stderr(&out))
}

const MULTISTAGE: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=bb:test
FROM $BASE AS one
ARG GREETING=hi
ENV APP=/app
WORKDIR $APP
COPY src/ ./src/
RUN sha256sum src/* > sums && echo "$GREETING from RUN" && echo "stage one ran"
RUN <<EOF
echo heredoc line
echo second > /app/h.txt
EOF
RUN <<EOF
#!/bin/sh -e
# A script with its own interpreter line.
echo "shebang-$((5+5))"
EOF

FROM bb:test AS unused
RUN echo "unused-$((2+3))"

FROM ${BASE}
COPY --from=one /app /srv/app
COPY --chown=app:app <<EOF /etc/app.conf
greeting=${GREETING:-unset}
EOF
LABEL org.example.title="my app"
EXPOSE 8080 53/udp
ENV MODE=prod
USER app
WORKDIR /srv/app
HEALTHCHECK --interval=5s CMD test -f /srv/app/sums
CMD ["cat", "/srv/app/sums"]
"#;

#[test]
fn a_multistage_build_runs_what_the_target_needs() {
    let b = Berth::new();
    let ctx = context(&b, MULTISTAGE);
    write(&ctx, "src/a.txt", "hello\n");
    write(&ctx, "src/b.txt", "world\n");
    write(&ctx, "src/debug.log", "noise\n");
    write(&ctx, "src/keep.log", "kept\n");
    write(&ctx, ".dockerignore", "**/*.log\n!src/keep.log\n");
    let ctx_s = ctx.to_str().unwrap();
    let (_, progress) = build(&b, &["-t", "app:1", "--build-arg", "GREETING=hey", ctx_s]);
    assert!(progress.contains("hey from RUN"), "{progress}");
    assert!(progress.contains("heredoc line"), "{progress}");
    assert!(progress.contains("shebang-10"), "{progress}");
    assert!(!progress.contains("unused-"), "{progress}");
    assert!(
        progress.contains("naming to docker.io/library/app:1"),
        "{progress}"
    );
    // The image: the files, the config.
    let sums = b.ok(&["run", "--rm", "--network", "none", "app:1"]);
    assert!(
        sums.contains("src/a.txt") && sums.contains("src/b.txt"),
        "{sums}"
    );
    assert!(
        sums.contains("src/keep.log") && !sums.contains("debug.log"),
        "{sums}"
    );
    let inside = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "id -un; pwd; cat /etc/app.conf; stat -c '%U' /etc/app.conf; cat /srv/app/h.txt; echo $MODE",
    ]);
    // GREETING is an ARG of stage one only: unset in the last stage.
    assert_eq!(inside, "app\n/srv/app\ngreeting=unset\napp\nsecond\nprod\n");
    let cfg = b.ok(&["inspect", "-f", "{{json .Config}}", "app:1"]);
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["Cmd"], serde_json::json!(["cat", "/srv/app/sums"]));
    assert_eq!(v["User"], "app");
    assert_eq!(v["WorkingDir"], "/srv/app");
    assert_eq!(v["Labels"]["org.example.title"], "my app");
    assert!(v["ExposedPorts"]["53/udp"].is_object(), "{cfg}");
    assert_eq!(v["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(v["Healthcheck"]["Interval"], 5_000_000_000i64);
    let history = b.ok(&["history", "--no-trunc", "app:1"]);
    assert!(
        history.contains("COPY --from=one /app /srv/app # buildkit"),
        "{history}"
    );
    // --target builds that stage alone.
    let (_, progress) = build(&b, &["--target", "unused", "-t", "u:1", ctx_s]);
    assert!(progress.contains("unused-5"), "{progress}");
    assert!(!progress.contains("stage one ran"), "{progress}");
    let out = b.run(&["build", "--target", "nope", ctx_s]);
    assert_eq!(code(&out), 1);
}

#[test]
fn the_cache_is_keyed_by_content() {
    let b = Berth::new();
    let ctx = context(
        &b,
        // (The output differs from the command text: $((…)) is evaluated.)
        "FROM bb:test\nRUN echo first-$((0+1))\nCOPY src/ /src/\nRUN echo after-$((1+1)) && sha256sum /src/*\nCOPY other.txt /\nRUN echo last-$((1+2))\n",
    );
    write(&ctx, "src/a.txt", "one\n");
    write(&ctx, "other.txt", "x\n");
    let ctx_s = ctx.to_str().unwrap();
    let (_, p1) = build(&b, &["-t", "c:1", ctx_s]);
    assert!(p1.contains("first-1") && p1.contains("last-3"), "{p1}");
    let id1 = b.ok(&["inspect", "-f", "{{.Id}}", "c:1"]);
    // Unchanged: everything cached, the same image.
    let (_, p2) = build(&b, &["-t", "c:1", ctx_s]);
    assert!(!p2.contains("first-1") && !p2.contains("last-3"), "{p2}");
    assert_eq!(p2.matches("CACHED").count(), 5, "{p2}");
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "c:1"]), id1);
    // touch changes no content: still cached, still the same image.
    let f = std::fs::File::options()
        .append(true)
        .open(ctx.join("src/a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(100))
        .unwrap();
    let (_, p3) = build(&b, &["-t", "c:1", ctx_s]);
    assert!(!p3.contains("first-1") && !p3.contains("last-3"), "{p3}");
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "c:1"]), id1);
    // One file changed: only the steps from the COPY that reads it re-run.
    write(&ctx, "src/a.txt", "two\n");
    let (_, p4) = build(&b, &["-t", "c:2", ctx_s]);
    assert!(!p4.contains("first-1"), "{p4}");
    assert!(p4.contains("after-2") && p4.contains("last-3"), "{p4}");
    // --no-cache runs everything.
    let (_, p5) = build(&b, &["--no-cache", "-t", "c:3", ctx_s]);
    assert!(p5.contains("first-1") && p5.contains("last-3"), "{p5}");
    // The cache shows in system df and goes with builder prune; the
    // tagged images stay.
    let df = b.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(!df.contains("Build Cache 0"), "{df}");
    // --keep-storage with room for everything removes nothing.
    b.ok(&["builder", "prune", "-f", "--keep-storage", "10g"]);
    let df = b.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(!df.contains("Build Cache 0"), "{df}");
    b.ok(&["builder", "prune", "-f"]);
    let df = b.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Build Cache 0"), "{df}");
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "c:2",
        "cat",
        "/src/a.txt",
    ]);
    let (_, p6) = build(&b, &["-t", "c:1", ctx_s]);
    assert!(p6.contains("first-1"), "{p6}");
    // -q prints the id alone; --iidfile writes it.
    let iid = b.path().join("iid");
    let (q, _) = build(&b, &["-q", "--iidfile", iid.to_str().unwrap(), ctx_s]);
    assert_eq!(q.trim(), std::fs::read_to_string(&iid).unwrap());
    assert!(q.starts_with("sha256:"), "{q}");
}

#[test]
fn a_failing_step_fails_the_build_cleanly() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test\nRUN echo about to fail && echo on stderr >&2 && exit 3\nRUN echo never\n",
    );
    let out = b.run(&["build", "-t", "bad:1", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(
        err.contains("about to fail") && err.contains("on stderr"),
        "{err}"
    );
    assert!(!err.contains("never\n"), "{err}");
    // Nothing half-made: no tag, no container left.
    assert_ne!(code(&b.run(&["inspect", "bad:1"])), 0);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    // Parse errors point at the line.
    std::fs::write(ctx.join("Dockerfile"), "FROM bb:test\nRUN --bogus x\n").unwrap();
    let out = b.run(&["build", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Dockerfile:2:5: unknown flag: --bogus"),
        "{}",
        stderr(&out)
    );
    // A step whose process cannot start is a failed build, not a bad
    // Dockerfile: named by its step, with the runtime's reason; and a RUN
    // on nothing at all (`FROM scratch` first) does start (it used to
    // fail mounting an overlay of no layers).
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nRUN [\"/nonexistent\"]\n",
    )
    .unwrap();
    let out = b.run(&["build", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "[stage-0 2/2] line 2: RUN: exec: \"/nonexistent\": no such file or directory"
        ) && !err.contains("invalid Dockerfile"),
        "{err}"
    );
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    // An ARG used by nobody is reported.
    std::fs::write(ctx.join("Dockerfile"), "FROM bb:test\nCMD [\"true\"]\n").unwrap();
    let out = b.run(&["build", "--build-arg", "UNUSED=1", ctx.to_str().unwrap()]);
    assert!(stderr(&out).contains("UNUSED"), "{}", stderr(&out));
}

#[test]
fn a_hostile_context_stays_contained() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test\nCOPY . /ctx/\nRUN ls -la /ctx/ && ! test -e /ctx/passwd-link/root\n",
    );
    write(&ctx, "plain.txt", "ok\n");
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc", ctx.join("etc-link")).unwrap();
    build(&b, &["-t", "h:1", ctx.to_str().unwrap()]);
    // The links are copied as links, never followed to the host's files.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "h:1",
        "sh",
        "-c",
        "readlink /ctx/passwd-link; readlink /ctx/etc-link; cat /ctx/plain.txt",
    ]);
    assert_eq!(out, "/etc/passwd\n/etc\nok\n");
    // Naming a link (or ../) as the source resolves inside the context.
    for src in ["passwd-link", "../../../../etc/passwd", "etc-link/shadow"] {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM bb:test\nCOPY {src} /stolen\n"),
        )
        .unwrap();
        let out = b.run(&["build", "-t", "h:2", ctx.to_str().unwrap()]);
        assert_eq!(code(&out), 1, "{src}: {}", stderr(&out));
    }
    assert_ne!(code(&b.run(&["inspect", "h:2"])), 0);
}

#[test]
fn run_mounts_cache_secret_bind_and_tmpfs() {
    let b = Berth::new();
    let ctx = context(
        &b,
        r#"FROM bb:test
RUN --mount=type=cache,target=/cache,id=counter sh -c 'echo x >> /cache/count; echo "count=$(wc -l < /cache/count)"'
RUN --mount=type=secret,id=tok test "$(wc -c < /run/secrets/tok)" -eq 12 && grep -q '^s3cr3t' /run/secrets/tok && echo secret-file-ok
RUN --mount=type=secret,id=tok,env=TOKEN test ${#TOKEN} -eq 12 && echo secret-env-ok
RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/a.txt && ! touch /mnt/src/new 2>/dev/null && echo bind-ro-ok
RUN --mount=type=bind,source=src,target=/mnt/src,rw touch /mnt/src/new && echo bind-rw-ok
RUN --mount=type=tmpfs,target=/scratch,size=1m df /scratch | grep -q tmpfs && echo tmpfs-ok > /tmpfs-ran
"#,
    );
    write(&ctx, "src/a.txt", "from the context\n");
    let secret = b.path().join("tok.txt");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let sec = format!("id=tok,src={}", secret.display());
    let ctx_s = ctx.to_str().unwrap();
    let (_, p1) = build(&b, &["-t", "m:1", "--secret", &sec, ctx_s]);
    for want in [
        "count=1",
        "secret-file-ok",
        "secret-env-ok",
        "from the context",
        "bind-ro-ok",
        "bind-rw-ok",
    ] {
        assert!(p1.contains(want), "{want}: {p1}");
    }
    // rw binds are throwaway copies: the context is untouched.
    assert!(!ctx.join("src/new").exists());
    // The cache dir persists across builds (even --no-cache ones).
    let (_, p2) = build(&b, &["--no-cache", "-t", "m:2", "--secret", &sec, ctx_s]);
    assert!(p2.contains("count=2"), "{p2}");
    // The secret is in no layer, no config, no history.
    let tar = b.path().join("m.tar");
    b.ok(&["save", "-o", tar.to_str().unwrap(), "m:2"]);
    let mut found = false;
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if data.windows(12).any(|w| w == b"s3cr3t-value") {
            found = true;
        }
        // Layers inside the archive are tars themselves (uncompressed).
        if let Ok(mut inner) = tar::Archive::new(&data[..]).entries() {
            while let Some(Ok(mut ie)) = inner.next() {
                let mut d = Vec::new();
                let _ = std::io::Read::read_to_end(&mut ie, &mut d);
                if d.windows(12).any(|w| w == b"s3cr3t-value") {
                    found = true;
                }
            }
        }
    }
    assert!(!found, "the secret leaked into the saved image");
    let history = b.ok(&["history", "--no-trunc", "m:2"]);
    assert!(!history.contains("s3cr3t-value"), "{history}");
    // The cache mount's content is not in the image; the tmpfs step ran.
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "m:2",
        "sh",
        "-c",
        "test ! -e /cache/count && test ! -e /mnt/src/new && cat /tmpfs-ran",
    ]);
    // builder prune empties the cache mounts too.
    b.ok(&["builder", "prune", "-f"]);
    let (_, p3) = build(&b, &["-t", "m:3", "--secret", &sec, ctx_s]);
    assert!(p3.contains("count=1"), "{p3}");
    // A required secret that is missing fails the build.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test\nRUN --mount=type=secret,id=missing,required cat /run/secrets/missing\n",
    )
    .unwrap();
    let out = b.run(&["build", ctx_s]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

#[test]
fn independent_stages_build_at_the_same_time() {
    let b = Berth::new();
    let ctx = context(
        &b,
        r#"FROM bb:test AS left
RUN echo "start-$((0+1))" && sleep 1 && echo "end-$((0+1))" > /left.txt && echo "end-$((0+1))"

FROM bb:test AS right
RUN echo "start-$((1+1))" && sleep 1 && echo "end-$((1+1))" > /right.txt && echo "end-$((1+1))"

FROM bb:test AS broken
RUN exit 7

FROM bb:test
COPY --from=left /left.txt /
COPY --from=right /right.txt /
CMD ["cat", "/left.txt", "/right.txt"]
"#,
    );
    let ctx_s = ctx.to_str().unwrap();
    let (_, progress) = build(&b, &["-t", "par:1", ctx_s]);
    // Both stages started before either finished.
    let pos = |s: &str| {
        progress
            .find(s)
            .unwrap_or_else(|| panic!("{s}: {progress}"))
    };
    let first_end = pos("end-1").min(pos("end-2"));
    assert!(
        pos("start-1") < first_end && pos("start-2") < first_end,
        "{progress}"
    );
    // The stage nobody needs never ran; step numbers follow the plan.
    assert!(!progress.contains("broken"), "{progress}");
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "par:1"]),
        "end-1\nend-2\n"
    );
    // Rebuilt from the cache, both stages finish at once (a hang once).
    let (_, again) = build(&b, &["-t", "par:1", ctx_s]);
    assert!(
        !again.contains("start-1") && again.matches("CACHED").count() >= 4,
        "{again}"
    );
    // A failure in a parallel stage fails the build with its exit code.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test AS a\nRUN sleep 0.3 && exit 7\nFROM bb:test AS b\nRUN echo fine\nFROM bb:test\nCOPY --from=a / /a\nCOPY --from=b / /b\n",
    )
    .unwrap();
    let out = b.run(&["build", "-t", "par:2", ctx_s]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("exit code: 7"), "{}", stderr(&out));
    assert_ne!(code(&b.run(&["inspect", "par:2"])), 0);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn onbuild_triggers_run_when_the_image_is_a_base() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test\nONBUILD COPY trigger.txt /t.txt\nONBUILD RUN echo \"onbuild-$((1+1))\"\n",
    );
    let ctx_s = ctx.to_str().unwrap();
    build(&b, &["-t", "base:1", ctx_s]);
    let onbuild = b.ok(&["inspect", "-f", "{{json .Config.OnBuild}}", "base:1"]);
    assert!(onbuild.contains("COPY trigger.txt /t.txt"), "{onbuild}");
    std::fs::write(ctx.join("Dockerfile"), "FROM base:1\nRUN cat /t.txt\n").unwrap();
    write(&ctx, "trigger.txt", "from the child's context\n");
    let (_, progress) = build(&b, &["-t", "child:1", ctx_s]);
    assert!(progress.contains("onbuild-2"), "{progress}");
    assert!(progress.contains("from the child's context"), "{progress}");
    // Triggers do not pass on to grandchildren.
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .Config.OnBuild}}", "child:1"]),
        "null\n"
    );
}

#[test]
fn outputs_local_tar_and_archives() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test AS files\nRUN mkdir -p /out && echo artifact > /out/result.txt\nFROM scratch\nCOPY --from=files /out/ /\n",
    );
    let ctx_s = ctx.to_str().unwrap();
    let dir = b.path().join("exported");
    build(
        &b,
        &["-o", &format!("type=local,dest={}", dir.display()), ctx_s],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("result.txt")).unwrap(),
        "artifact\n"
    );
    let tarf = b.path().join("fs.tar");
    build(
        &b,
        &["-o", &format!("type=tar,dest={}", tarf.display()), ctx_s],
    );
    let mut a = tar::Archive::new(std::fs::File::open(&tarf).unwrap());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("result.txt")), "{names:?}");
    // A docker archive that another berth loads.
    let arch = b.path().join("img.tar");
    build(
        &b,
        &[
            "-t",
            "art:1",
            "-o",
            &format!("type=docker,dest={}", arch.display()),
            ctx_s,
        ],
    );
    let other = Berth::empty();
    let loaded = other.ok(&["load", "-i", arch.to_str().unwrap()]);
    assert!(loaded.contains("art:1"), "{loaded}");
    // Layers are gzip in archives by default, zstd or as stored on request.
    let layer_magics = |path: &std::path::Path| -> Vec<Vec<u8>> {
        let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
        let mut index = None;
        let mut blobs = std::collections::HashMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            if name == "index.json" {
                index = Some(data);
            } else if let Some(h) = name.strip_prefix("blobs/sha256/") {
                blobs.insert(h.to_string(), data);
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&index.unwrap()).unwrap();
        let m = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let manifest: serde_json::Value = serde_json::from_slice(&blobs[m]).unwrap();
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let d = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
                blobs[d][..4].to_vec()
            })
            .collect()
    };
    assert!(layer_magics(&arch).iter().all(|m| m[..2] == [0x1f, 0x8b]));
    let zst = b.path().join("img.zst.tar");
    build(
        &b,
        &[
            "-o",
            &format!("type=oci,dest={},compression=zstd", zst.display()),
            ctx_s,
        ],
    );
    assert!(layer_magics(&zst)
        .iter()
        .all(|m| m[..] == [0x28, 0xb5, 0x2f, 0xfd]));
    let plain = b.path().join("img.plain.tar");
    build(
        &b,
        &[
            "-o",
            &format!("type=oci,dest={},compression=uncompressed", plain.display()),
            ctx_s,
        ],
    );
    assert!(layer_magics(&plain).iter().all(|m| m[..2] != [0x1f, 0x8b]));
    let zloaded = Berth::empty();
    zloaded.ok(&["load", "-i", zst.to_str().unwrap()]);
    let out = b.run(&["build", "-o", "type=registry", ctx_s]);
    assert_eq!(code(&out), 1);
}

#[test]
fn the_same_inputs_give_the_same_image() {
    let b1 = Berth::new();
    let base = b1.path().join("base.tar");
    b1.ok(&["save", "-o", base.to_str().unwrap(), IMAGE]);
    let b2 = Berth::empty();
    b2.ok(&["load", "-i", base.to_str().unwrap()]);
    let ctx = context(
        &b1,
        "FROM bb:test\nCOPY src/ /src/\nRUN echo hi > /f && mkdir -p /d/e && ln -s /f /g\nENV X=1\nCMD [\"cat\", \"/f\"]\n",
    );
    write(&ctx, "src/a.txt", "one\n");
    let built = |b: &Berth, epoch: Option<&str>| -> (String, String) {
        let mut c = b.cmd();
        c.args(["build", "-q", ctx.to_str().unwrap()]);
        if let Some(e) = epoch {
            c.env("SOURCE_DATE_EPOCH", e);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let id = stdout(&out).trim().to_string();
        let layers = b.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", &id]);
        (id, layers)
    };
    // Without SOURCE_DATE_EPOCH the layers are byte-identical (file times
    // clamped to 0); with it, the whole image is.
    let (_, l1) = built(&b1, None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, l2) = built(&b2, None);
    assert_eq!(l1, l2);
    b1.ok(&["builder", "prune"]);
    b2.ok(&["builder", "prune"]);
    let (id1, _) = built(&b1, Some("1700000000"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (id2, _) = built(&b2, Some("1700000000"));
    assert_eq!(id1, id2);
    let created = b1.ok(&["inspect", "-f", "{{.Created}}", &id1]);
    assert!(created.starts_with("2023-11-14T22:13:20"), "{created}");
}

#[test]
fn check_reports_lint_rules() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test as Base\nMAINTAINER someone\nENV API_TOKEN=x\nENV PATH=$PAHT:/opt/bin\nCMD echo hi\n",
    );
    let ctx_s = ctx.to_str().unwrap();
    let out = b.run(&["build", "--check", ctx_s]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    for rule in [
        "FromAsCasing",
        "StageNameCasing",
        "MaintainerDeprecated",
        "SecretsUsedInArgOrEnv",
        "JSONArgsRecommended",
        "FinalStageRunsAsRoot",
        "NoHealthcheck",
    ] {
        assert!(text.contains(rule), "{rule}: {text}");
    }
    // BuildKit's report (buildx printResult, BuildKit's lint.Warning.PrintTo
    // and errdefs.Source.Print): the count, then each rule with its URL,
    // the message and the source lines, `>>>` on the instruction.
    assert!(
        text.starts_with("Check complete, 7 warnings have been found!\n\nWARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n'as' and 'FROM' keywords' casing do not match\nDockerfile:1\n--------------------\n   1 | >>> FROM bb:test as Base\n"),
        "{text}"
    );
    assert!(
        text.contains("\nWARNING: NoHealthcheck\nthe final stage has no HEALTHCHECK\n"),
        "{text}"
    );
    // The production checklist's apt rules, broken and kept.
    let apt = b.path().join("apt");
    std::fs::create_dir_all(&apt).unwrap();
    write(
        &apt,
        "Dockerfile",
        "FROM bb:test\nRUN apt-get update && apt-get install -y curl\nUSER app\nHEALTHCHECK CMD true\nCMD [\"true\"]\n",
    );
    let out = b.run(&["build", "--check", apt.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Check complete, 2 warnings have been found!"),
        "{text}"
    );
    assert!(text.contains("WARNING: AptNoInstallRecommends\n"), "{text}");
    assert!(text.contains("WARNING: AptListsNotCleaned\n"), "{text}");
    assert!(text.contains("   2 | >>> RUN apt-get update"), "{text}");
    std::fs::write(
        apt.join("Dockerfile"),
        "FROM bb:test\nRUN apt-get update && apt-get install -y --no-install-recommends curl \\\n  && rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true\nCMD [\"true\"]\n",
    )
    .unwrap();
    let out = b.run(&["build", "--check", apt.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(stdout(&out), "Check complete, no warnings found.\n");
    // A build shows them as warnings and still builds.
    let (_, progress) = build(&b, &["-t", "linted:1", ctx_s]);
    assert!(progress.contains("WARN: JSONArgsRecommended"), "{progress}");
    assert!(
        progress.contains("WARN: UndefinedVar: usage of undefined variable '$PAHT' (line 4)"),
        "{progress}"
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test AS base\nUSER app\nHEALTHCHECK CMD true\nCMD [\"true\"]\n",
    )
    .unwrap();
    let out = b.run(&["build", "--check", ctx_s]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("no warnings"));
}

#[test]
fn contexts_and_dockerfiles_from_stdin() {
    let b = Berth::new();
    // A context tar on stdin.
    let tarball = small_tar(&[
        (
            "Dockerfile",
            b"FROM bb:test\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n",
        ),
        ("hello.txt", b"from a tar on stdin\n"),
    ]);
    let out = b.run_stdin(&["build", "-t", "stdin:1", "-"], &tarball);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "stdin:1"]),
        "from a tar on stdin\n"
    );
    // A Dockerfile alone on stdin: no context.
    let out = b.run_stdin(
        &["build", "-t", "stdin:2", "-"],
        b"FROM bb:test\nRUN echo no-context > /n\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // -f - with a directory context.
    let ctx = context(&b, "unused");
    write(&ctx, "data.txt", "dir context\n");
    let out = b.run_stdin(
        &["build", "-t", "stdin:3", "-f", "-", ctx.to_str().unwrap()],
        b"FROM bb:test\nCOPY data.txt /\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "stdin:3",
            "cat",
            "/data.txt"
        ]),
        "dir context\n"
    );
    // A hostile tar cannot write outside its temp context.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    let name = b"../../../../../tmp/berth-escape-test";
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    t.append(&h, &b"x\n"[..]).unwrap();
    let out = b.run_stdin(&["build", "-"], &t.into_inner().unwrap());
    assert_ne!(code(&out), 0);
    assert!(!std::path::Path::new("/tmp/berth-escape-test").exists());
}

#[test]
fn copy_chmod_octal_and_symbolic() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test\nCOPY --chmod=0640 f.txt /a\nCOPY --chmod=u+x,go-w f.txt /b\nCOPY --chmod=a=rX d/ /d/\nCOPY --parents d/inner.txt f.txt /p/\n",
    );
    write(&ctx, "f.txt", "x\n");
    write(&ctx, "d/inner.txt", "y\n");
    std::fs::set_permissions(
        ctx.join("f.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    std::fs::set_permissions(
        ctx.join("d/inner.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    build(&b, &["-t", "chmod:1", ctx.to_str().unwrap()]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "chmod:1",
            "stat",
            "-c",
            "%a",
            "/a",
            "/b",
            "/d/inner.txt",
        ]),
        "640\n744\n444\n"
    );
    // --parents keeps each source's path under the destination.
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "chmod:1",
            "cat",
            "/p/d/inner.txt",
            "/p/f.txt"
        ]),
        "y\nx\n"
    );
    let out = b.run(&["build", "-f", "/dev/null", ctx.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
}

#[test]
fn a_hostile_base_image_stays_contained() {
    let b = Berth::new();
    // A base whose /etc is a symlink leading out of its root (to the
    // host's /etc if anything followed it on the host).
    let tar = busybox_rootfs_tar();
    let mut a = tar::Archive::new(&tar[..]);
    let mut t = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path.trim_end_matches('/') == "etc" || path.starts_with("etc/") {
            continue;
        }
        let h = e.header().clone();
        t.append(&h, &mut e).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    t.append_link(&mut h, "etc", "../../../../../../etc")
        .unwrap();
    let out = b.run_stdin(&["import", "-", "evil:1"], &t.into_inner().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let marker = format!("berth-hostile-{}", std::process::id());
    let ctx = context(
        &b,
        &format!("FROM evil:1\nCOPY f.txt /etc/{marker}\nRUN cat /etc/{marker} && ls /etc\n"),
    );
    write(&ctx, "f.txt", "inside\n");
    let out = b.run(&["build", "-t", "evil:2", ctx.to_str().unwrap()]);
    // Built or refused, the host's /etc is untouched.
    assert!(
        !std::path::Path::new(&format!("/etc/{marker}")).exists(),
        "the build wrote into the host's /etc: {}",
        stderr(&out)
    );
    // --chown names are read from the image, never from the host's /etc.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM evil:1\nCOPY --chown=daemon f.txt /f\n",
    )
    .unwrap();
    let out = b.run(&["build", ctx.to_str().unwrap()]);
    assert_ne!(
        code(&out),
        0,
        "a user name resolved through a symlink: {}",
        stdout(&out)
    );
    // Same for `run -u NAME` on that image.
    let out = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "daemon",
        "evil:1",
        "true",
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
}

#[test]
fn named_contexts_no_cache_filter_and_platform() {
    let b = Berth::new();
    b.ok(&["tag", IMAGE, "other-base:7"]);
    let ctx = context(
        &b,
        "FROM base AS one\nRUN echo \"one-$((0+1))\"\nFROM bb:test\nCOPY --from=extra data.txt /data.txt\nCOPY --from=one /etc/passwd /one-passwd\nRUN echo \"two-$((1+1))\"\n",
    );
    let extra = b.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("data.txt"), "from a named context\n").unwrap();
    let ctx_s = ctx.to_str().unwrap();
    let named = format!("extra={}", extra.display());
    let args = [
        "--build-context",
        "base=docker-image://other-base:7",
        "--build-context",
        named.as_str(),
    ];
    let mut all = args.to_vec();
    all.extend(["-t", "named:1", ctx_s]);
    let (_, p1) = build(&b, &all);
    assert!(p1.contains("one-1") && p1.contains("two-2"), "{p1}");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "named:1",
            "cat",
            "/data.txt"
        ]),
        "from a named context\n"
    );
    // --no-cache-filter: that stage runs again, the others come from the cache.
    let mut all = args.to_vec();
    all.extend(["--no-cache-filter", "one", "-t", "named:2", ctx_s]);
    let (_, p2) = build(&b, &all);
    assert!(p2.contains("one-1"), "{p2}");
    // The last stage depends on stage one's result, which is the same image.
    assert!(!p2.contains("two-2"), "{p2}");
    // A base image of another platform is refused.
    let mut all = args.to_vec();
    all.extend(["--platform", "linux/s390x", ctx_s]);
    let mut cmd = vec!["build"];
    cmd.extend(all);
    let out = b.run(&cmd);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("is linux/amd64, the stage is for linux/s390x"),
        "{}",
        stderr(&out)
    );
    // A directory context cannot be a FROM.
    let mut all = vec!["build", "--build-context"];
    let bad = format!("base={}", extra.display());
    all.push(&bad);
    all.push(ctx_s);
    let out = b.run(&all);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

/// A Debian base made with `debootstrap --variant=minbase bookworm` from
/// the machine's mirror, imported, then the seeds' style of Dockerfile:
/// apt-get with cache mounts, a non-root user, a multi-stage Python app.
/// RUN steps that fetch use `--network=host` (granted with `--allow
/// network.host`): the tests leave the host's ip_forward off, which bridge
/// NAT to the mirror would need.
#[test]
fn a_debian_base_with_apt_get_a_python_app_and_a_node_app() {
    let b = Berth::new();
    import_debian(&b);
    let ctx = context(
        &b,
        r#"FROM debian:bookworm AS runtime
RUN --network=host --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-minimal hello >/dev/null
RUN useradd --create-home --uid 1500 app

FROM runtime AS test
COPY app/ /src/
RUN python3 -m py_compile /src/app.py && echo "tests-$((1+1))-passed"

FROM runtime AS node-runtime
RUN --network=host --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs >/dev/null

FROM node-runtime AS node-build
WORKDIR /src
COPY web/package.json web/build.js ./
COPY web/src/ ./src/
RUN node build.js && node --test test/ && echo "node-build-ok"

FROM node-runtime AS web
COPY --from=node-build --chown=app:app /src/dist/ /app/
USER app
WORKDIR /app
ENV NODE_ENV=production
CMD ["node", "server.js"]

FROM runtime
COPY --from=test --chown=app:app /src/ /app/
USER app
WORKDIR /app
HEALTHCHECK --interval=30s CMD python3 -c "import sys; sys.exit(0)"
CMD ["python3", "app.py"]
"#,
    );
    write(
        &ctx,
        "app/app.py",
        "import os, pwd, sys\nuser = pwd.getpwuid(os.getuid()).pw_name\nprint(f'hello from python {sys.version_info.major}.{sys.version_info.minor} as {user}')\n",
    );
    // A Node app in the seeds' style (a build stage, tests, a slim
    // runtime stage), with no npm registry: node only, from Debian.
    write(
        &ctx,
        "web/package.json",
        r#"{"name": "web", "version": "1.0.0", "main": "server.js", "type": "commonjs"}"#,
    );
    write(
        &ctx,
        "web/src/greet.js",
        "exports.greet = (who) => `hello ${who} from node ${process.versions.node.split('.')[0]}`;\n",
    );
    write(
        &ctx,
        "web/src/server.js",
        "const { greet } = require('./greet');\nconst os = require('os');\nconsole.log(greet(os.userInfo().username) + ' in ' + process.env.NODE_ENV);\n",
    );
    write(
        &ctx,
        "web/build.js",
        r#"const fs = require('fs');
fs.mkdirSync('dist', { recursive: true });
fs.mkdirSync('test', { recursive: true });
for (const f of fs.readdirSync('src')) fs.copyFileSync(`src/${f}`, `dist/${f}`);
fs.copyFileSync('package.json', 'dist/package.json');
fs.writeFileSync('test/greet.test.js', `const t = require('node:test');
const assert = require('node:assert');
const { greet } = require('../src/greet');
t.test('greets', () => assert.match(greet('x'), /^hello x from node/));
`);
"#,
    );
    // The Dockerfile's RUN --network=host needs the build's grant.
    let o = b.run(&["build", "-t", "py:1", ctx.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("build with --allow network.host"),
        "{}",
        stderr(&o)
    );
    let (_, py_progress) = build(
        &b,
        &[
            "--allow",
            "network.host",
            "-t",
            "py:1",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        !py_progress.contains("node-build-ok"),
        "the node stages are not needed: {py_progress}"
    );
    let (_, progress) = build(
        &b,
        &[
            "--allow",
            "network.host",
            "--target",
            "web",
            "-t",
            "web:1",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(progress.contains("node-build-ok"), "{progress}");
    let web = b.ok(&["run", "--rm", "--network", "none", "web:1"]);
    assert!(
        web.starts_with("hello app from node ") && web.ends_with(" in production\n"),
        "{web}"
    );
    assert!(py_progress.contains("tests-2-passed"), "{py_progress}");
    let hello = b.ok(&["run", "--rm", "--network", "none", "py:1"]);
    assert_eq!(hello, "hello from python 3.11 as app\n");
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "py:1", "hello"]),
        "Hello, world!\n"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "py:1",
            "stat",
            "-c",
            "%U",
            "/app/app.py"
        ]),
        "app\n"
    );
    // What apt-get update fetched stayed in the cache mount: the image has
    // the base's lists, no more.
    let lists = |img: &str| {
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "ls -l /var/lib/apt/lists/ | md5sum",
        ])
    };
    assert_eq!(lists("py:1"), lists("debian:bookworm"));
}

/// A one-file HTTP server on 127.0.0.1 (a thread); its port.
fn serve_file(path: &'static str, body: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req);
            let ok = line.starts_with(&format!("GET {path} "));
            let head = if ok {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = s.write_all(head.as_bytes());
            if ok {
                let _ = s.write_all(body);
            }
        }
    });
    port
}

#[test]
fn add_downloads_a_url_and_checks_its_checksum() {
    let b = Berth::new();
    const BODY: &[u8] = b"#!/bin/sh\necho downloaded tool\n";
    let port = serve_file("/files/tool.sh", BODY);
    let sum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(BODY))
    };
    let url = format!("http://127.0.0.1:{port}/files/tool.sh");
    let ctx = context(
        &b,
        &format!(
            "FROM bb:test\nADD --checksum=sha256:{sum} {url} /opt/\nADD {url} /opt/renamed.sh\n"
        ),
    );
    build(&b, &["-t", "dl:1", ctx.to_str().unwrap()]);
    assert_eq!(
        b.ok(&[
            "run", "--rm", "--network", "none", "dl:1", "sh", "-c",
            "sh /opt/tool.sh; stat -c %a /opt/tool.sh; cmp /opt/tool.sh /opt/renamed.sh && echo same",
        ]),
        "downloaded tool\n600\nsame\n"
    );
    // A wrong checksum, a missing file, --checksum on a local file: refused.
    for df in [
        format!(
            "FROM bb:test\nADD --checksum=sha256:{} {url} /x\n",
            "0".repeat(64)
        ),
        format!("FROM bb:test\nADD http://127.0.0.1:{port}/missing /x\n"),
        format!("FROM bb:test\nADD --checksum=sha256:{sum} Dockerfile /x\n"),
    ] {
        std::fs::write(ctx.join("Dockerfile"), &df).unwrap();
        let out = b.run(&["build", ctx.to_str().unwrap()]);
        assert_eq!(code(&out), 1, "{df}: {}", stderr(&out));
    }
}

#[test]
fn cache_to_and_cache_from_a_directory() {
    let b1 = Berth::new();
    let ctx = context(
        &b1,
        "FROM bb:test\nCOPY a.txt /\nRUN echo \"ran-$((2+2))\" && cat /a.txt > /b.txt\n",
    );
    write(&ctx, "a.txt", "cached content\n");
    let cache = b1.path().join("cache");
    let to = format!("type=local,dest={}", cache.display());
    let (_, p1) = build(
        &b1,
        &["--cache-to", &to, "-t", "c:1", ctx.to_str().unwrap()],
    );
    assert!(p1.contains("ran-4"), "{p1}");
    assert!(cache.join("cache.tar").is_file() && cache.join("keys.json").is_file());
    // Another store with the same base: the RUN step comes from the cache.
    let base = b1.path().join("base.tar");
    b1.ok(&["save", "-o", base.to_str().unwrap(), IMAGE]);
    let b2 = Berth::empty();
    b2.ok(&["load", "-i", base.to_str().unwrap()]);
    let from = format!("type=local,src={}", cache.display());
    let (_, p2) = build(
        &b2,
        &["--cache-from", &from, "-t", "c:2", ctx.to_str().unwrap()],
    );
    assert!(!p2.contains("ran-4"), "{p2}");
    assert_eq!(
        b2.ok(&["run", "--rm", "--network", "none", "c:2", "cat", "/b.txt"]),
        "cached content\n"
    );
    let out = b2.run(&[
        "build",
        "--cache-to",
        "type=registry,ref=x",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
}

#[test]
fn two_builds_at_once_both_succeed() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test AS a\nCOPY f.txt /\nRUN sleep 0.3 && cat /f.txt > /g.txt\nFROM bb:test\nCOPY --from=a /g.txt /\nRUN cat /g.txt\n",
    );
    write(&ctx, "f.txt", "shared\n");
    let spawn = |tag: &str| {
        b.cmd()
            .args(["build", "-q", "-t", tag, ctx.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (x, y) = (spawn("two:1"), spawn("two:2"));
    for out in [x.wait_with_output().unwrap(), y.wait_with_output().unwrap()] {
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for t in ["two:1", "two:2"] {
        assert_eq!(
            b.ok(&["run", "--rm", "--network", "none", t, "cat", "/g.txt"]),
            "shared\n"
        );
    }
    // And the cache they left serves a third build entirely.
    let (_, p) = build(&b, &["-t", "two:3", ctx.to_str().unwrap()]);
    assert_eq!(p.matches("CACHED").count(), 4, "{p}");
}

/// What a terminal shows after `raw` (the escapes the live view uses:
/// cursor up, carriage return, erase below).
fn screen(raw: &str) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    let mut row = 0usize;
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if let Some(esc) = rest.strip_prefix("\x1b[") {
            let n: String = esc.chars().take_while(|c| c.is_ascii_digit()).collect();
            let cmd = esc[n.len()..].chars().next().unwrap();
            match cmd {
                'A' => row = row.saturating_sub(n.parse().unwrap_or(1)),
                'J' => {
                    lines.truncate(row + 1);
                    lines[row].clear();
                }
                _ => {}
            }
            rest = &esc[n.len() + 1..];
            continue;
        }
        match c {
            '\r' => lines[row].clear(),
            '\n' => {
                row += 1;
                if lines.len() <= row {
                    lines.push(String::new());
                }
            }
            c => lines[row].push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    lines.retain(|l| !l.is_empty());
    lines
}

#[test]
fn tty_progress_is_a_live_view() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test\nRUN echo \"live-$((3+3))\" && sleep 1\nCMD [\"true\"]\n",
    );
    let ctx_s = ctx.to_str().unwrap();
    let (_, raw) = build(&b, &["--progress", "tty", ctx_s]);
    // While the step ran, its output was drawn under it, then erased.
    assert!(raw.contains(" => => # live-6"), "{raw}");
    assert!(
        raw.contains("\x1b[") && raw.contains("[+] Building 0."),
        "{raw}"
    );
    let shown = screen(&raw);
    assert!(!shown.iter().any(|l| l.contains("live-6")), "{shown:?}");
    let run = shown
        .iter()
        .find(|l| l.starts_with(" => [stage-0 2/3] RUN echo"))
        .unwrap_or_else(|| panic!("{shown:?}"));
    assert!(run.trim_end().ends_with('s'), "{run}");
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("[+] Building") && l.ends_with("FINISHED")),
        "{shown:?}"
    );
    let (_, raw) = build(&b, &["--progress", "tty", ctx_s]);
    let shown = screen(&raw);
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with(" => CACHED [stage-0 2/3] RUN echo")),
        "{shown:?}"
    );
    // A failing step still shows its output.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test\nRUN echo \"why-$((4+4))\" && exit 2\n",
    )
    .unwrap();
    let out = b.run(&["build", "--progress", "tty", ctx_s]);
    assert_eq!(code(&out), 1);
    let shown = screen(&stderr(&out));
    assert!(shown.iter().any(|l| l.contains("why-8")), "{shown:?}");
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with(" => ERROR [stage-0 2/2] RUN echo")),
        "{shown:?}"
    );
    let out = b.run(&["build", "--progress", "fancy", ctx_s]);
    assert_eq!(code(&out), 1);
}

#[test]
fn a_context_tarball_from_a_url() {
    let b = Berth::new();
    let tarball = small_tar(&[
        (
            "Dockerfile",
            b"FROM bb:test\nCOPY msg.txt /\nRUN cat /msg.txt > /copied\n",
        ),
        ("msg.txt", b"served over http\n"),
    ]);
    let body: &'static [u8] = Box::leak(tarball.into_boxed_slice());
    let port = serve_file("/ctx.tar", body);
    let url = format!("http://127.0.0.1:{port}/ctx.tar");
    build(&b, &["-t", "url:1", &url]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "url:1",
            "cat",
            "/copied"
        ]),
        "served over http\n"
    );
    let out = b.run(&["build", &format!("http://127.0.0.1:{port}/missing.tar")]);
    assert_eq!(code(&out), 1);
}

#[test]
fn add_extracts_local_archives_of_every_compression() {
    let b = Berth::new();
    let ctx = context(&b, "unused");
    let src = b.path().join("payload");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("dir/file.txt"), "inside the archive\n").unwrap();
    let mut df = String::from("FROM bb:test\n");
    for (name, flag) in [
        ("plain.tar", ""),
        ("a.tar.gz", "-z"),
        ("a.tar.bz2", "-j"),
        ("a.tar.xz", "-J"),
        ("a.tar.zst", "--zstd"),
    ] {
        let mut cmd = std::process::Command::new("tar");
        cmd.arg("-c");
        if !flag.is_empty() {
            cmd.arg(flag);
        }
        let st = cmd
            .arg("-f")
            .arg(ctx.join(name))
            .arg("-C")
            .arg(&src)
            .arg("dir")
            .status()
            .unwrap();
        assert!(st.success(), "tar {flag}");
        df.push_str(&format!("ADD {name} /x/{name}/\n"));
    }
    // A compressed file that is not a tar is copied as it is.
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(src.join("dir/file.txt"))
        .output()
        .unwrap();
    std::fs::write(ctx.join("note.gz"), gz.stdout).unwrap();
    df.push_str("ADD note.gz /x/\n");
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    build(&b, &["-t", "arch:1", ctx.to_str().unwrap()]);
    let out = b.ok(&[
        "run", "--rm", "--network", "none", "arch:1", "sh", "-c",
        "for d in plain.tar a.tar.gz a.tar.bz2 a.tar.xz a.tar.zst; do cat /x/$d/dir/file.txt; done; test -f /x/note.gz && echo kept",
    ]);
    assert_eq!(out, "inside the archive\n".repeat(5) + "kept\n");
}

#[test]
fn add_clones_a_git_repository() {
    let b = Berth::new();
    // A repository served over HTTP (git's dumb protocol) from 127.0.0.1.
    let web = b.path().join("web");
    let work = b.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README"), "from git\n").unwrap();
    // A build context in a subdirectory of the repository.
    std::fs::create_dir_all(work.join("app")).unwrap();
    std::fs::write(
        work.join("app/Dockerfile"),
        "FROM bb:test\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(work.join("app/hello.txt"), "hello from a git context\n").unwrap();
    git(&work, &["add", "README", "app"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    std::fs::create_dir_all(&web).unwrap();
    git(
        &web,
        &["clone", "-q", "--bare", work.to_str().unwrap(), "repo.git"],
    );
    git(&web.join("repo.git"), &["update-server-info"]);
    let mut server = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "0"])
        .current_dir(&web)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    // "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
    let port: u16 = first
        .split("port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let ctx = context(
        &b,
        &format!("FROM bb:test\nADD --checksum={commit} {url}#main /src/\n"),
    );
    let out = b.run(&["build", "-t", "git:1", ctx.to_str().unwrap()]);
    let ok = out.status.success();
    let err = stderr(&out);
    let wrong = {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM bb:test\nADD --checksum={} {url} /src/\n",
                "0".repeat(40)
            ),
        )
        .unwrap();
        code(&b.run(&["build", ctx.to_str().unwrap()]))
    };
    // The repository as the build context: `#ref:dir`.
    let from_git = b.run(&["build", "-q", "-t", "gitctx:1", &format!("{url}#main:app")]);
    let escape = code(&b.run(&["build", &format!("{url}#main:../..")]));
    let _ = server.kill();
    let _ = server.wait();
    assert!(ok, "{err}");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "git:1",
            "sh",
            "-c",
            "cat /src/README; test ! -e /src/.git && echo no-git-dir"
        ]),
        "from git\nno-git-dir\n"
    );
    assert_eq!(wrong, 1);
    assert!(from_git.status.success(), "{}", stderr(&from_git));
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "gitctx:1",
            "cat",
            "/hello.txt"
        ]),
        "hello from a git context\n"
    );
    assert_eq!(escape, 1);
    // No local paths or file:// through git.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM bb:test\nADD file://{}/repo.git /src/\n",
            web.display()
        ),
    )
    .unwrap();
    assert_ne!(code(&b.run(&["build", ctx.to_str().unwrap()])), 0);
}

#[test]
fn a_rebuilt_identical_base_stage_keeps_its_children_cached() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test AS base\nRUN echo \"base-$((1+1))\"\nENV MODE=x\nFROM base\nRUN echo \"child-$((2+2))\" && touch /child\n",
    );
    let ctx_s = ctx.to_str().unwrap();
    let (_, p1) = build(&b, &["-t", "kid:1", ctx_s]);
    assert!(p1.contains("base-2") && p1.contains("child-4"), "{p1}");
    // The base stage runs again (same files, same settings, new times):
    // the child's step is still served from the cache.
    let (_, p2) = build(&b, &["--no-cache-filter", "base", "-t", "kid:2", ctx_s]);
    assert!(p2.contains("base-2"), "{p2}");
    assert!(!p2.contains("child-4"), "{p2}");
    // A different setting in the base does re-run it.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test AS base\nRUN echo \"base-$((1+1))\"\nENV MODE=y\nFROM base\nRUN echo \"child-$((2+2))\" && touch /child\n",
    )
    .unwrap();
    let (_, p3) = build(&b, &["-t", "kid:3", ctx_s]);
    assert!(p3.contains("child-4"), "{p3}");
}

/// Layers a build makes are stored unpacked, without a blob; the blob is
/// made from the layer's files when an export or a push needs it, and must
/// hash to the diff-id the build recorded.
#[test]
fn build_layers_are_blobless_until_exported() {
    use sha2::Digest as _;
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test\nLABEL a=b\nCOPY big.bin /big.bin\nRUN sha256sum /big.bin > /sum && cat /sum\nCOPY small.txt /small.txt\n",
    );
    // Over 8 MiB: this layer is digested while the RUN step runs on it.
    let big: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(ctx.join("big.bin"), &big).unwrap();
    write(&ctx, "small.txt", "small\n");
    let want = hex::encode(sha2::Sha256::digest(&big));
    let (out, err) = build(
        &b,
        &["--progress", "plain", "-t", "big:1", ctx.to_str().unwrap()],
    );
    assert!(format!("{out}{err}").contains(&want), "{out}{err}");
    let layers: Vec<String> =
        serde_json::from_str(&b.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "big:1"]))
            .unwrap();
    assert_eq!(layers.len(), 4, "{layers:?}");
    let root = b.path().join("root");
    let blob = |d: &str| {
        root.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    for d in &layers[1..] {
        assert!(!blob(d).exists(), "a blob was written for {d}");
        assert!(root
            .join("layers")
            .join(d.trim_start_matches("sha256:"))
            .is_dir());
    }
    assert_eq!(
        b.ok(&["run", "--rm", "big:1", "cat", "/sum"])
            .split(' ')
            .next(),
        Some(want.as_str())
    );
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "big:1"]);

    // An archive carries blobs made from the layers: another store loads
    // the same image.
    let archive = b.path().join("big.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), "big:1"]);
    let other = Berth::empty();
    other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(other.ok(&["inspect", "-f", "{{.Id}}", "big:1"]), id);
    assert_eq!(
        other.ok(&["run", "--rm", "big:1", "cat", "/small.txt"]),
        "small\n"
    );

    // A rebuild from scratch makes the same layers; its copies of them go
    // (in the background) and leave nothing in tmp/.
    build(&b, &["--no-cache", "-q", ctx.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .flatten()
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left in tmp/: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // A layer whose files changed on disk is refused, not exported.
    write(&ctx, "small.txt", "changed\n");
    build(&b, &["-t", "big:2", ctx.to_str().unwrap()]);
    let layers: Vec<String> =
        serde_json::from_str(&b.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "big:2"]))
            .unwrap();
    let top = root
        .join("layers")
        .join(layers[3].trim_start_matches("sha256:"));
    std::fs::write(top.join("small.txt"), "tampered\n").unwrap();
    let out = b.run(&[
        "save",
        "-o",
        b.path().join("bad.tar").to_str().unwrap(),
        "big:2",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("changed since it was built"),
        "{}",
        stderr(&out)
    );

    // A RUN that fails on a layer still being digested: exit 1, nothing
    // left in tmp/ (the digesting process is gone with it).
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test\nCOPY big.bin /big2.bin\nRUN test ! -e /big2.bin\n",
    )
    .unwrap();
    let out = b.run(&["build", "-t", "fails:1", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(code(&b.run(&["inspect", "fails:1"])), 1);
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}

/// `--platform` and `FROM --platform`: a stage for the build machine
/// (`$BUILDPLATFORM`) feeding one for the target, BuildKit's platform ARGs,
/// the target's architecture in the config; a RUN for another
/// architecture fails with a hint about emulation.
#[test]
fn builds_for_another_platform() {
    let b = Berth::new();
    let rootfs = busybox_rootfs_tar();
    let out = b.run_stdin(
        &["import", "--platform", "linux/arm64", "-", "bb-arm:1"],
        &rootfs,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Architecture}}", "bb-arm:1"]),
        "arm64\n"
    );
    let ctx = context(
        &b,
        "FROM --platform=$BUILDPLATFORM bb:test AS build\nARG TARGETPLATFORM TARGETARCH BUILDPLATFORM\nRUN echo \"on $BUILDPLATFORM for $TARGETPLATFORM ($TARGETARCH)\" > /out\n\nFROM scratch AS bare\nCOPY --from=build /out /out\n\nFROM bb-arm:1\nCOPY --from=build /out /out\n",
    );
    let ctx_s = ctx.to_str().unwrap();
    build(&b, &["--platform", "linux/arm64", "-t", "cross:1", ctx_s]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Architecture}}", "cross:1"]),
        "arm64\n"
    );
    let dest = b.path().join("files");
    let o = format!("type=local,dest={}", dest.display());
    build(&b, &["--platform", "linux/arm64", "-o", &o, ctx_s]);
    assert_eq!(
        std::fs::read_to_string(dest.join("out")).unwrap(),
        "on linux/amd64 for linux/arm64 (arm64)\n"
    );
    // FROM scratch takes the target platform, variant included.
    build(
        &b,
        &[
            "--platform",
            "linux/arm64/v8",
            "--target",
            "bare",
            "-t",
            "bare:1",
            ctx_s,
        ],
    );
    let cfg: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "bare:1"])).unwrap();
    assert_eq!(cfg[0]["Architecture"], "arm64", "{cfg}");
    assert_eq!(cfg[0]["Variant"], "v8", "{cfg}");
    // Several platforms at once: a directory each, or one OCI layout
    // whose index names an image index of both (load takes this
    // machine's).
    let both = ["--target", "bare", "--platform", "linux/amd64,linux/arm64"];
    let dirs = b.path().join("per-platform");
    let o = format!("type=local,dest={}", dirs.display());
    let mut args = both.to_vec();
    args.extend(["-o", &o, ctx_s]);
    build(&b, &args);
    for arch in ["amd64", "arm64"] {
        assert_eq!(
            std::fs::read_to_string(dirs.join(format!("linux_{arch}/out"))).unwrap(),
            format!("on linux/amd64 for linux/{arch} ({arch})\n")
        );
    }
    let archive = b.path().join("multi.tar");
    let o = format!("type=oci,dest={}", archive.display());
    let mut args = both.to_vec();
    args.extend(["-o", &o, "-t", "multi:1", ctx_s]);
    build(&b, &args);
    let mut files = std::collections::HashMap::new();
    let data = std::fs::read(&archive).unwrap();
    for e in tar::Archive::new(&data[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        files.insert(name, v);
    }
    let json = |name: &str| -> serde_json::Value { serde_json::from_slice(&files[name]).unwrap() };
    let index = json("index.json");
    let top = &index["manifests"][0];
    assert_eq!(
        top["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    assert_eq!(
        top["annotations"]["io.containerd.image.name"],
        "docker.io/library/multi:1"
    );
    let list = json(&format!(
        "blobs/sha256/{}",
        top["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    ));
    let archs: Vec<&str> = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{list}");
    let other = Berth::empty();
    other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        other.ok(&["inspect", "-f", "{{.Architecture}}", "multi:1"]),
        "amd64\n"
    );
    // The image store and a docker archive keep one platform per name.
    let out = b.run(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--target",
        "bare",
        ctx_s,
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("several platforms"),
        "{}",
        stderr(&out)
    );

    // For this machine, the arm64 base does not fit.
    let out = b.run(&["build", ctx_s]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("bb-arm:1 is linux/arm64, the stage is for linux/amd64"),
        "{}",
        stderr(&out)
    );

    // An image whose programs are for another architecture (an aarch64
    // ELF header): its RUN cannot execute here without emulation.
    let mut elf = [0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1;
    elf[16] = 2; // ET_EXEC
    elf[18] = 183; // EM_AARCH64
    elf[20] = 1;
    let mut t = tar::Builder::new(Vec::new());
    for (name, data, mode) in [("bin/", &b""[..], 0o755), ("bin/sh", &elf[..], 0o755)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_cksum();
        t.append_data(&mut h, name, data).unwrap();
    }
    let arm = t.into_inner().unwrap();
    let out = b.run_stdin(
        &["import", "--platform", "linux/arm64", "-", "arm-only:1"],
        &arm,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(ctx.join("Dockerfile"), "FROM arm-only:1\nRUN true\n").unwrap();
    let out = b.run(&["build", "--platform", "linux/arm64", ctx_s]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("binfmt_misc"), "{}", stderr(&out));
}

/// `RUN --mount=type=cache,from=STAGE,source=PATH`: a new cache starts as
/// a copy of the stage's files; later builds find what RUN steps left.
#[test]
fn a_cache_mount_seeded_from_a_stage() {
    let b = Berth::new();
    let ctx = context(
        &b,
        "FROM bb:test AS seed\nRUN mkdir -p /seed && echo \"seeded-$((1+1))\" > /seed/s.txt\nFROM bb:test\nRUN --mount=type=cache,target=/c,id=seeded,from=seed,source=/seed cat /c/s.txt && echo more > /c/m.txt\n",
    );
    let (_, p) = build(&b, &["--progress", "plain", ctx.to_str().unwrap()]);
    assert!(p.contains("seeded-2"), "{p}");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test AS seed\nRUN mkdir -p /seed\nFROM bb:test\nRUN --mount=type=cache,target=/c,id=seeded,from=seed,source=/seed cat /c/s.txt /c/m.txt\n",
    )
    .unwrap();
    let (_, p) = build(&b, &["--progress", "plain", ctx.to_str().unwrap()]);
    assert!(p.contains("seeded-2") && p.contains("more"), "{p}");
    // A stage that does not exist is an error, not an empty cache.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:test\nRUN --mount=type=cache,target=/c,id=other,from=nowhere:1 true\n",
    )
    .unwrap();
    let out = b.run(&["build", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}
