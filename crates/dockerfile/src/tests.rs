//! Parser tests: a table of Dockerfiles and what they parse to.
use super::*;

fn one(text: &str) -> Instruction {
    let df = parse(&format!("FROM scratch\n{text}")).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(df.stages[0].instructions.len(), 1, "{text}");
    df.stages[0].instructions[0].instruction.clone()
}

fn parse_err(text: &str) -> ParseError {
    match parse(text) {
        Ok(d) => panic!("{text:?} parsed: {d:?}"),
        Err(e) => e,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn instructions_table() {
    let table: Vec<(&str, Instruction)> = vec![
        ("RUN echo hi", Instruction::Run(Run {
            command: Command::Shell("echo hi".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })),
        ("run [\"echo\", \"hi\"]", Instruction::Run(Run {
            command: Command::Exec(s(&["echo", "hi"])),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })),
        // Not valid JSON: the shell form, as BuildKit.
        ("RUN [\"echo\", hi]", Instruction::Run(Run {
            command: Command::Shell("[\"echo\", hi]".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })),
        (
            "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok --network=none pip install x",
            Instruction::Run(Run {
                command: Command::Shell("pip install x".into()),
                heredocs: vec![],
                mounts: s(&["type=cache,target=/root/.cache", "type=secret,id=tok"]),
                network: Some("none".into()),
                security: None,
            }),
        ),
        ("CMD [\"sh\"]", Instruction::Cmd(Command::Exec(s(&["sh"])))),
        ("CMD []", Instruction::Cmd(Command::Exec(vec![]))),
        ("ENTRYPOINT top -b", Instruction::Entrypoint(Command::Shell("top -b".into()))),
        ("ENV A=1 B=\"two words\" C=x\\ y", Instruction::Env(kv(&[("A", "1"), ("B", "\"two words\""), ("C", "x\\ y")]))),
        ("ENV LEGACY some value here", Instruction::Env(kv(&[("LEGACY", "some value here")]))),
        ("ENV PATH=/opt/bin:$PATH", Instruction::Env(kv(&[("PATH", "/opt/bin:$PATH")]))),
        ("LABEL org.opencontainers.image.title=\"My App\" v=1", Instruction::Label(kv(&[("org.opencontainers.image.title", "\"My App\""), ("v", "1")]))),
        ("ARG VERSION", Instruction::Arg(vec![ArgDecl { name: "VERSION".into(), default: None }])),
        ("ARG A=1 B", Instruction::Arg(vec![
            ArgDecl { name: "A".into(), default: Some("1".into()) },
            ArgDecl { name: "B".into(), default: None },
        ])),
        ("EXPOSE 80/tcp 53/udp $PORT", Instruction::Expose(s(&["80/tcp", "53/udp", "$PORT"]))),
        ("WORKDIR /app/src", Instruction::Workdir("/app/src".into())),
        ("WORKDIR /path with spaces", Instruction::Workdir("/path with spaces".into())),
        ("USER app:app", Instruction::User("app:app".into())),
        ("VOLUME /data /logs", Instruction::Volume(s(&["/data", "/logs"]))),
        ("VOLUME [\"/data\"]", Instruction::Volume(s(&["/data"]))),
        ("STOPSIGNAL SIGQUIT", Instruction::StopSignal("SIGQUIT".into())),
        ("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]", Instruction::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"]))),
        ("MAINTAINER Jane <jane@example.com>", Instruction::Maintainer("Jane <jane@example.com>".into())),
        ("ONBUILD RUN make", Instruction::Onbuild("RUN make".into())),
        ("HEALTHCHECK NONE", Instruction::Healthcheck(Healthcheck::None)),
        (
            "HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=2s --retries=4 CMD curl -f http://localhost/",
            Instruction::Healthcheck(Healthcheck::Check {
                test: s(&["CMD-SHELL", "curl -f http://localhost/"]),
                interval: 5_000_000_000,
                timeout: 3_000_000_000,
                start_period: 60_000_000_000,
                start_interval: 2_000_000_000,
                retries: 4,
            }),
        ),
        (
            "HEALTHCHECK CMD [\"/bin/check\", \"-q\"]",
            Instruction::Healthcheck(Healthcheck::Check {
                test: s(&["CMD", "/bin/check", "-q"]),
                interval: 0,
                timeout: 0,
                start_period: 0,
                start_interval: 0,
                retries: 0,
            }),
        ),
    ];
    for (text, want) in table {
        assert_eq!(one(text), want, "{text}");
    }
}

fn copy(text: &str) -> Copy {
    match one(text) {
        Instruction::Copy(c) => c,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn copy_and_add() {
    let c = copy("COPY --from=build --chown=app:app --chmod=0755 --link /out/bin /usr/local/bin/");
    assert!(!c.add);
    assert_eq!(c.sources, ["/out/bin"]);
    assert_eq!(c.dest, "/usr/local/bin/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link);
    let c = copy("COPY --parents --exclude=*.pyc --exclude=tests/ src/ lib/ /app/");
    assert!(c.parents);
    assert_eq!(c.exclude, ["*.pyc", "tests/"]);
    assert_eq!(c.sources, ["src/", "lib/"]);
    let c = copy("COPY [\"a file\", \"b\", \"/dest dir/\"]");
    assert!(c.json);
    assert_eq!(c.sources, ["a file", "b"]);
    assert_eq!(c.dest, "/dest dir/");
    let c = copy("ADD --checksum=sha256:abc https://example.com/x.tar.gz /x/");
    assert!(c.add);
    assert_eq!(c.checksum.as_deref(), Some("sha256:abc"));
    let c = copy("COPY --link=false a /b");
    assert!(!c.link);
    // --from is a COPY flag, --checksum an ADD one.
    assert!(parse("FROM a\nADD --from=x a b").is_err());
    assert!(parse("FROM a\nCOPY --checksum=x a b").is_err());
    assert!(parse("FROM a\nCOPY onlyone").is_err());
}

#[test]
fn stages_and_global_args() {
    let df = parse(
        "ARG BASE=alpine\nARG TAG\nFROM $BASE:${TAG:-latest} AS Build\nRUN make\n\nFROM --platform=$BUILDPLATFORM scratch\nCOPY --from=build /out /\n",
    )
    .unwrap();
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.global_args[0].1.default.as_deref(), Some("alpine"));
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].base, "$BASE:${TAG:-latest}");
    assert_eq!(df.stages[0].line, 3);
    assert_eq!(df.stages[1].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(df.stages[1].instructions[0].line, 7);
    assert!(df.stage("BUILD").is_some());
    assert_eq!(df.stage("1").unwrap().base, "scratch");
    for bad in [
        "FROM a AS 1x",
        "FROM a AS",
        "FROM a b c d",
        "FROM",
        "RUN x",
        "",
        "# just a comment\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn continuations_comments_and_blank_lines() {
    let df = parse(
        "FROM a\nRUN apt-get update && \\\n    # a comment inside\n    apt-get install -y \\\n\n      curl\n# between\n\nCMD x\n",
    )
    .unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(ins.len(), 2);
    assert_eq!(
        ins[0].instruction,
        Instruction::Run(Run {
            command: Command::Shell("apt-get update &&     apt-get install -y       curl".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })
    );
    assert_eq!((ins[0].line, ins[0].end_line), (2, 6));
    assert_eq!(ins[1].line, 9);
    assert_eq!(df.warnings.len(), 1, "{:?}", df.warnings);
    // Trailing whitespace after the escape still continues; CRLF works.
    let df = parse("FROM a\r\nRUN a \\  \r\n b\r\n").unwrap();
    assert_eq!(df.stages[0].instructions[0].instruction, one("RUN a  b"));
}

#[test]
fn directives() {
    let df = parse("# syntax=docker/dockerfile:1\n#escape=`\n# check=skip=JSONArgsRecommended\nFROM a\nRUN echo `\n  hi\n").unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.escape, '`');
    assert_eq!(
        df.directives.check.as_deref(),
        Some("skip=JSONArgsRecommended")
    );
    assert_eq!(
        df.stages[0].instructions[0].instruction,
        one("RUN echo   hi")
    );
    // A backslash is an ordinary character with escape=`.
    let df = parse("# escape=`\nFROM a\nWORKDIR C:\\dir\n").unwrap();
    assert_eq!(
        df.stages[0].instructions[0].instruction,
        Instruction::Workdir("C:\\dir".into())
    );
    // Directives only count at the very top.
    let df = parse("FROM a\n# escape=`\nRUN x \\\n y\n").unwrap();
    assert_eq!(df.directives.escape, '\\');
    let df = parse("# comment\n# escape=`\nFROM a\n").unwrap();
    assert_eq!(df.directives.escape, '\\');
    assert!(parse("# escape=x\nFROM a\n").is_err());
    assert!(parse("# escape=`\n# escape=\\\nFROM a\n").is_err());
}

fn run(text: &str) -> Run {
    let df = parse(&format!("FROM a\n{text}")).unwrap_or_else(|e| panic!("{text}: {e}"));
    match &df.stages[0].instructions[0].instruction {
        Instruction::Run(r) => r.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heredocs() {
    let r = run("RUN <<EOF\necho one\necho $HOME\nEOF\n");
    assert_eq!(r.command, Command::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs,
        [Heredoc {
            name: "EOF".into(),
            content: "echo one\necho $HOME\n".into(),
            expand: true
        }]
    );
    // <<- strips leading tabs (of the body and the delimiter).
    let r = run("RUN <<-EOT bash\n\tif true; then\n\t\techo yes\n\tfi\n\tEOT\n");
    assert_eq!(r.heredocs[0].content, "if true; then\necho yes\nfi\n");
    assert_eq!(r.command, Command::Shell("<<-EOT bash".into()));
    // Quoted delimiters: no expansion.
    let r = run("RUN <<'EOF'\necho $HOME\nEOF\n");
    assert!(!r.heredocs[0].expand);
    let r = run("RUN <<\"EOF\" sh\nx\nEOF\n");
    assert!(!r.heredocs[0].expand);
    // Two heredocs on one line, in order.
    let r = run("RUN <<A cat > /a && <<B cat > /b\nfirst\nA\nsecond\nB\n");
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(
        (r.heredocs[0].name.as_str(), r.heredocs[0].content.as_str()),
        ("A", "first\n")
    );
    assert_eq!(
        (r.heredocs[1].name.as_str(), r.heredocs[1].content.as_str()),
        ("B", "second\n")
    );
    // COPY <<EOF /path.
    let df =
        parse("FROM a\nCOPY <<EOF /etc/app.conf\nkey=value\nEOF\nRUN cat /etc/app.conf\n").unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(ins.len(), 2);
    match &ins[0].instruction {
        Instruction::Copy(c) => {
            assert_eq!(c.sources, ["<<EOF"]);
            assert_eq!(c.dest, "/etc/app.conf");
            assert_eq!(c.heredocs[0].content, "key=value\n");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ins[1].line, 5);
    // `<<` inside quotes or a here-string `<<<` is not a heredoc.
    let r = run("RUN echo \"<<EOF\" && cat <<<word\n");
    assert!(r.heredocs.is_empty());
    // Not closed: an error pointing at the instruction.
    let e = parse_err("FROM a\nRUN <<EOF\necho\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("heredoc"), "{e}");
    // Other instructions do not take heredocs.
    let df = parse("FROM a\nENV X=<<EOF\n").unwrap();
    assert_eq!(df.stages[0].instructions.len(), 1);
}

#[test]
fn errors_point_at_line_and_column() {
    let e = parse_err("FROM a\nRUN --bogus=1 make\n");
    assert_eq!((e.line, e.column), (2, 5));
    assert!(e.message.contains("unknown flag: --bogus"), "{e}");
    let e = parse_err("FROM a\n\n  FOO bar\n");
    assert_eq!((e.line, e.column), (3, 3));
    assert!(e.message.contains("unknown instruction: FOO"), "{e}");
    assert_eq!(
        e.in_file("Dockerfile"),
        "Dockerfile:3:3: unknown instruction: FOO"
    );
    for bad in [
        "FROM a\nSHELL /bin/sh -c",
        "FROM a\nENV",
        "FROM a\nENV A=1 B",
        "FROM a\nENV =x",
        "FROM a\nUSER a b",
        "FROM a\nONBUILD ONBUILD RUN x",
        "FROM a\nONBUILD FROM x",
        "FROM a\nONBUILD BOGUS x",
        "FROM a\nHEALTHCHECK --interval=5x CMD true",
        "FROM a\nHEALTHCHECK --interval=1us CMD true",
        "FROM a\nHEALTHCHECK NONE extra",
        "FROM a\nHEALTHCHECK curl x",
        "FROM a\nHEALTHCHECK --retries=-1 CMD true",
        "FROM a\nCMD",
        "FROM a\nEXPOSE",
        "FROM a\nVOLUME [\"\"]",
        "FROM a\nRUN --mount make",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn words_keep_quotes_for_expansion() {
    assert_eq!(
        instruction::split_words(r#"a "b c" 'd e' f\ g"#, '\\'),
        [r#"a"#, r#""b c""#, "'d e'", r#"f\ g"#]
    );
    // The builder expands them: quotes go.
    let l = expand::Lexer::default();
    let env = |_: &str| None;
    assert_eq!(l.word("\"two words\"", &env).unwrap(), "two words");
    assert_eq!(l.word("x\\ y", &env).unwrap(), "x y");
}

#[test]
fn a_realistic_multistage_file() {
    let text = r#"# syntax=docker/dockerfile:1.7
ARG PYTHON=python:3.12-slim

FROM ${PYTHON} AS deps
WORKDIR /app
COPY requirements.txt .
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --prefix=/install -r requirements.txt

FROM ${PYTHON} AS test
COPY --from=deps /install /usr/local
COPY . /app
RUN python -m pytest -q

FROM ${PYTHON}
LABEL org.opencontainers.image.source="https://example.com/app"
RUN useradd --create-home app
COPY --from=deps /install /usr/local
COPY --chown=app:app src/ /app/src/
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"
ENTRYPOINT ["python", "-m", "app"]
CMD ["--port", "8000"]
"#;
    let df = parse(text).unwrap();
    assert_eq!(df.stages.len(), 3);
    assert_eq!(df.stages[2].instructions.len(), 9);
    assert_eq!(df.stages[0].instructions[2].line, 7);
    assert_eq!(df.stages[0].instructions[2].end_line, 8);
    assert_eq!(
        df.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
}
