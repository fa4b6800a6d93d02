//! Hostile input (root): the escape classes of runc's, containerd's,
//! moby's and BuildKit's CVE history, each tried against berth.
mod common;
#[path = "../../registry/tests/support/fake.rs"]
mod fake;
#[path = "support/registry.rs"]
mod registry;

use common::*;

/// runc's CVE-2024-21626: a working dir of `/proc/self/fd/N` (from `-w`,
/// `exec -w` or an image's WORKDIR) must never leave the container: from a
/// host directory `..` walks the host's tree. Either the start fails or the
/// cwd is inside (a marker only the container's root has).
#[test]
#[ignore = "root: starts containers"]
fn a_working_dir_through_proc_self_fd_stays_inside() {
    let b = Berth::new();
    let marker = "../../../../../../../../inside-marker";
    let probe = format!("test -e {marker} && echo inside || echo ESCAPED");
    let o = b.run_stdin(
        &["import", "-c", "CMD [\"sh\"]", "-", "bbmark"],
        &busybox_rootfs_tar_with(&[("inside-marker", 0o644, b"")]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id = b
        .ok(&["run", "-d", "bbmark", "sleep", "300"])
        .trim()
        .to_string();
    for n in 3..24 {
        let wd = format!("/proc/self/fd/{n}");
        let runs = [
            b.run(&["run", "--rm", "-w", &wd, "bbmark", "sh", "-c", &probe]),
            b.run(&["exec", "-w", &wd, &id, "sh", "-c", &probe]),
        ];
        for o in runs {
            let out = stdout(&o);
            assert!(!out.contains("ESCAPED"), "-w {wd}: {out}{}", stderr(&o));
            assert!(
                out.contains("inside") || !o.status.success(),
                "-w {wd}: {out}{}",
                stderr(&o)
            );
        }
    }
    // An image whose WORKDIR is one.
    let o = b.run_stdin(
        &[
            "import",
            "-c",
            "WORKDIR /proc/self/fd/7",
            "-c",
            "CMD [\"sh\"]",
            "-",
            "bbwd",
        ],
        &busybox_rootfs_tar_with(&[("inside-marker", 0o644, b"")]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "bbwd", "sh", "-c", &probe]);
    assert!(!stdout(&o).contains("ESCAPED"), "{}", stdout(&o));
    b.ok(&["rm", "-f", &id]);
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}

/// A tar of `(name, bytes)` files, names written verbatim (the tar crate's
/// `append_data` refuses `..` and absolute names; hostile archives have them).
fn raw_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `load` of an archive whose manifest names files outside it: a host file
/// that happens to be a valid image config (made by the test) must not
/// become an image, whether named absolutely or through `..`.
#[test]
#[ignore = "root: uses a state root"]
fn load_never_reads_files_outside_the_archive() {
    let b = Berth::empty();
    let host = b.path().join("host-config.json");
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    std::fs::write(&host, config).unwrap();
    let abs = host.display().to_string();
    let up = format!("../../../../../../../..{abs}");
    for name in [abs.as_str(), up.as_str()] {
        let manifest = format!(r#"[{{"Config":"{name}","RepoTags":["evil:1"],"Layers":[]}}]"#);
        let o = b.run_stdin(
            &["load"],
            &raw_tar(&[("manifest.json", manifest.as_bytes())]),
        );
        assert_eq!(code(&o), 1, "Config {name}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("leaves the archive"), "{}", stderr(&o));
        assert_eq!(b.ok(&["images", "-q"]), "", "Config {name} became an image");
    }
    // A layer named by a host path.
    let config_in = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        "0".repeat(64)
    );
    let manifest = format!(r#"[{{"Config":"c.json","RepoTags":["evil:2"],"Layers":["{abs}"]}}]"#);
    let o = b.run_stdin(
        &["load"],
        &raw_tar(&[
            ("manifest.json", manifest.as_bytes()),
            ("c.json", config_in.as_bytes()),
        ]),
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("leaves the archive"), "{}", stderr(&o));
    // A manifest too big to be one is refused, not read into memory.
    let mut big = b"[".to_vec();
    big.resize(9 << 20, b' ');
    big.push(b']');
    let o = b.run_stdin(&["load"], &raw_tar(&[("manifest.json", &big)]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("more than"), "{}", stderr(&o));
    assert_eq!(b.ok(&["images", "-q"]), "");
}

/// An OCI layout whose indexes fan out (each names the one below twice: a
/// hash cannot name itself, but 2^depth paths are as bad): refused once
/// too many manifests are followed, not walked for ever.
#[test]
#[ignore = "root: uses a state root"]
fn load_of_fanning_out_indexes_ends() {
    use sha2::Digest as _;
    let b = Berth::empty();
    let hex = |d: &[u8]| hex::encode(sha2::Sha256::digest(d));
    let index_of = |target: &str| {
        let one = format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:{target}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}"#
        );
        format!(r#"{{"schemaVersion":2,"manifests":[{one},{one}]}}"#).into_bytes()
    };
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[]}}"#,
        hex(&config),
        config.len()
    )
    .into_bytes();
    let mut blobs = vec![config, manifest];
    // 13 levels: 8192 paths down to the one image manifest.
    for _ in 0..13 {
        let below = hex(blobs.last().unwrap());
        blobs.push(index_of(&below));
    }
    let top = hex(blobs.last().unwrap());
    let mut files: Vec<(String, Vec<u8>)> = blobs
        .into_iter()
        .map(|d| (format!("blobs/sha256/{}", hex(&d)), d))
        .collect();
    files.push(("index.json".into(), index_of(&top)));
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let o = b.run_stdin(&["load"], &raw_tar(&refs));
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("more than 4096"), "{}", stderr(&o));
    assert_eq!(b.ok(&["images", "-q"]), "");
}

/// moby's CVE-2024-29018: an `--internal` network has no way out, and its
/// DNS responder must not be one: container names resolve, anything else
/// is REFUSED instead of relayed to the host's resolvers.
#[test]
#[ignore = "root: starts containers on a network"]
fn dns_on_an_internal_network_relays_nothing() {
    let b = Berth::new();
    b.ok(&["network", "create", "--internal", "sealed"]);
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "peer",
            "--network",
            "sealed",
            IMAGE,
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        IMAGE,
        "sh",
        "-c",
        "nslookup peer; nslookup example.com; nslookup berth-test.invalid",
    ]);
    let out = stdout(&o) + &stderr(&o);
    assert!(out.contains("Name:\tpeer"), "{out}");
    assert!(
        out.contains("can't find example.com: REFUSED"),
        "relayed out of an internal network: {out}"
    );
    assert!(
        out.contains("can't find berth-test.invalid: REFUSED"),
        "{out}"
    );
    b.ok(&["rm", "-f", &id]);
    b.ok(&["network", "rm", "sealed"]);
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}

/// The state root is 0710 as dockerd's `/var/lib/docker`: another host
/// user can neither read an image's files nor reach a setuid binary in an
/// unpacked layer; a root made open (by hand, by an older berth) is
/// tightened by the next command.
#[test]
#[ignore = "root: switches to an unprivileged user"]
fn other_host_users_cannot_reach_the_state_root() {
    use std::os::unix::fs::PermissionsExt;
    let b = Berth::new();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&b.root), 0o710, "a new root");
    let layer = std::fs::read_dir(b.root.join("layers"))
        .unwrap()
        .flatten()
        .next()
        .expect("the image's layer")
        .path();
    let busybox = layer.join("bin/busybox");
    assert!(busybox.is_file());
    let as_nobody = |what: &std::path::Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(what)
            .output()
            .unwrap()
    };
    let o = as_nobody(&busybox);
    assert!(!o.status.success(), "nobody read a layer file");
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // Opened up by hand: the next command closes it again.
    std::fs::set_permissions(&b.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        as_nobody(&busybox).status.success(),
        "the probe itself works"
    );
    b.ok(&["ps"]);
    assert_eq!(mode(&b.root), 0o710, "an open root is tightened at open");
    assert!(!as_nobody(&busybox).status.success());
}

/// runc's CVE-2019-5736: a container must never get the host's berth
/// binary open for writing. An entrypoint `#!/proc/self/exe` does not
/// re-run berth inside the container, and a container process that keeps
/// trying to open every `/proc/*/exe` for writing while 20 `exec`s enter
/// it (berth's code runs in its pid namespace until each execve) opens
/// none; berth's sha256 never changes.
#[test]
#[ignore = "root: starts containers"]
fn the_berth_binary_cannot_be_overwritten_from_a_container() {
    use sha2::Digest as _;
    let b = Berth::new();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_berth"));
    let sum = || hex::encode(sha2::Sha256::digest(std::fs::read(exe).unwrap()));
    let before = sum();
    let o = b.run_stdin(
        &["import", "-c", "CMD [\"sh\"]", "-", "bbexe"],
        &busybox_rootfs_tar_with(&[("evil", 0o755, b"#!/proc/self/exe\n")]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "bbexe", "/evil", "version"]);
    assert!(
        !stdout(&o).contains("berth") && !o.status.success(),
        "berth ran inside the container: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let hunter = "while :; do for p in /proc/[0-9]*; do \
        if (exec 3>>$p/exe) 2>/dev/null; then echo OPENED $p $(readlink $p/exe) >> /tmp/opened; fi; \
        done; done";
    let id = b
        .ok(&["run", "-d", "bbexe", "sh", "-c", hunter])
        .trim()
        .to_string();
    for _ in 0..20 {
        b.ok(&["exec", &id, "true"]);
    }
    let opened = b.run(&["exec", &id, "cat", "/tmp/opened"]);
    b.ok(&["rm", "-f", &id]);
    assert_eq!(
        stdout(&opened),
        "",
        "a container process opened an exe for writing"
    );
    assert_eq!(sum(), before, "the berth binary changed");
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}

/// A volume, bind or tmpfs over `/proc` or `/sys`, or over a `/proc` file
/// other than the ones lxcfs provides, would hide the kernel's files (and
/// the masks over them): refused at create, as runc refuses them, and
/// nothing is created.
#[test]
#[ignore = "root: uses a state root"]
fn mounts_over_proc_and_sys_are_refused() {
    let b = Berth::new();
    for m in [
        ["-v", "vol:/proc"],
        ["-v", "/tmp:/sys"],
        ["-v", "/tmp:/proc/"],
        ["--mount", "type=bind,src=/tmp,dst=/proc/sysrq-trigger"],
        ["--mount", "type=tmpfs,dst=/proc/sys"],
        ["--mount", "type=volume,src=vol2,dst=/sys"],
    ] {
        let o = b.run(&["run", "--rm", m[0], m[1], IMAGE, "true"]);
        assert_eq!(code(&o), 125, "{m:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("is not allowed"), "{}", stderr(&o));
    }
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    // What lxcfs covers, and the cgroup tree systemd images bind, still work.
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "/proc/meminfo:/proc/meminfo:ro",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        IMAGE,
        "true",
    ]);
}

/// A Dockerfile is untrusted input. `RUN --network=host` and
/// `--security=insecure` need the build's grant (BuildKit's entitlements);
/// a git ref or host that starts with `-` never reaches git as an option;
/// bind and cache mounts whose `source=`/`id=` climb out with `..` or name
/// an absolute host path stay inside the context or the cache.
#[test]
#[ignore = "root: runs builds"]
fn a_dockerfile_gets_no_more_than_the_build_grants() {
    let b = Berth::new();
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("sub/inside"), "in the context\n").unwrap();
    let ctx_s = ctx.to_str().unwrap();
    let build = |dockerfile: &str, extra: &[&str]| {
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let mut args = vec!["build", "--no-cache", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.push(ctx_s);
        b.run(&args)
    };
    let host_net = format!("FROM {IMAGE}\nRUN --network=host echo on-the-$((1+1))-network\n");
    let o = build(&host_net, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--allow network.host"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("on-the-2-network"));
    let o = build(&host_net, &["--allow", "network.host"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = build(
        &format!("FROM {IMAGE}\nRUN --security=insecure true\n"),
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--allow security.insecure"),
        "{}",
        stderr(&o)
    );
    // git: a ref that is an option, a host that is one.
    let pwned = b.path().join("pwned");
    for add in [
        format!(
            "https://127.0.0.1:1/r.git#--upload-pack=touch${{IFS}}{}",
            pwned.display()
        ),
        "ssh://-oProxyCommand=true/r.git".to_string(),
    ] {
        let o = build(&format!("FROM {IMAGE}\nADD {add} /src\n"), &[]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("must not start with")
                || stderr(&o).contains("starts with \"-\" is refused"),
            "{}",
            stderr(&o)
        );
        assert!(!pwned.exists());
    }
    // Bind sources that climb out of the context, or name host paths.
    for source in ["../../../../etc", "/etc", "sub/../../../etc"] {
        let o = build(
            &format!(
                "FROM {IMAGE}\nRUN --mount=type=bind,source={source},target=/m cat /m/shadow /m/passwd 2>&1 | head -1; ls /m\n"
            ),
            &[],
        );
        let all = stdout(&o) + &stderr(&o);
        assert!(
            !all.contains("root:x:0:0"),
            "source={source} reached the host's /etc: {all}"
        );
    }
    // A cache id that climbs out names a cache of its own, not a host dir.
    let o = build(
        &format!(
            "FROM {IMAGE}\nRUN --mount=type=cache,id=../../../../../etc,target=/c ls /c | wc -l\n"
        ),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\n#") && !stderr(&o).contains("passwd"),
        "{}",
        stderr(&o)
    );
}

/// Deep images: overlayfs takes its options in one page, which held about
/// 60 layer names. Images of up to 127 layers run (and their files can be
/// copied out of a stopped container, through the engine's own mounts);
/// a build or load beyond that is refused with dockerd's words.
#[test]
#[ignore = "root: builds and runs deep images"]
fn images_up_to_127_layers_run_and_deeper_ones_are_refused() {
    let b = Berth::new();
    let ctx = b.path().join("deep");
    std::fs::create_dir_all(&ctx).unwrap();
    for i in 1..=128 {
        std::fs::write(ctx.join(format!("f{i}")), format!("layer {i}\n")).unwrap();
    }
    let dockerfile = |n: usize| {
        let mut d = format!("FROM {IMAGE}\n");
        for i in 1..=n {
            d.push_str(&format!("COPY f{i} /f{i}\n"));
        }
        d
    };
    // The base image has one layer: n COPY steps make n + 1.
    for (steps, tag) in [(59, "deep:60"), (126, "deep:127")] {
        std::fs::write(ctx.join("Dockerfile"), dockerfile(steps)).unwrap();
        b.ok(&["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
        let out = b.ok(&["run", "--rm", tag, "cat", "/f1", &format!("/f{steps}")]);
        assert_eq!(out, format!("layer 1\nlayer {steps}\n"), "{tag}");
    }
    let id = b.ok(&["create", "deep:127"]).trim().to_string();
    let out = b.path().join("f126.out");
    b.ok(&["cp", &format!("{id}:/f126"), out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "layer 126\n");
    b.ok(&["rm", &id]);
    std::fs::write(ctx.join("Dockerfile"), dockerfile(127)).unwrap();
    let o = b.run(&["build", "-q", "-t", "deep:128", ctx.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("max depth exceeded"), "{}", stderr(&o));
    // A saved 127-layer image with two more layers spliced in: refused at
    // load, nothing registered.
    let saved = b.path().join("deep.tar");
    b.ok(&["save", "-o", saved.to_str().unwrap(), "deep:127"]);
    let before = b.ok(&["images", "-q"]);
    let o = b.run(&["load", "-i", &deeper_archive(&saved, 2)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("max depth exceeded"), "{}", stderr(&o));
    assert_eq!(b.ok(&["images", "-q"]), before);
}

/// `saved` (a docker-archive of one image) with `extra` empty layers added
/// at the top: a new archive next to it, its path returned.
fn deeper_archive(saved: &std::path::Path, extra: usize) -> String {
    use sha2::Digest as _;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut a = tar::Archive::new(std::fs::File::open(saved).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.push((name, data));
    }
    let get = |files: &[(String, Vec<u8>)], n: &str| {
        files.iter().find(|(f, _)| f == n).unwrap().1.clone()
    };
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&get(&files, "manifest.json")).unwrap();
    let cfg_name = manifest[0]["Config"].as_str().unwrap().to_string();
    let mut config: serde_json::Value = serde_json::from_slice(&get(&files, &cfg_name)).unwrap();
    let empty_layer = {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("extra").unwrap();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        t.append(&h, &b""[..]).unwrap();
        t.into_inner().unwrap()
    };
    let hex = hex::encode(sha2::Sha256::digest(&empty_layer));
    for i in 0..extra {
        let name = format!("extra{i}/layer.tar");
        files.push((name.clone(), empty_layer.clone()));
        manifest[0]["Layers"]
            .as_array_mut()
            .unwrap()
            .push(name.into());
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(format!("sha256:{hex}").into());
    }
    let cfg = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", hex::encode(sha2::Sha256::digest(&cfg)));
    manifest[0]["Config"] = cfg_name.clone().into();
    files.retain(|(f, _)| f != "manifest.json" && !f.ends_with(".json"));
    files.push((cfg_name, cfg));
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let mut t = tar::Builder::new(Vec::new());
    for (name, data) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append(&h, data.as_slice()).unwrap();
    }
    let out = saved.with_extension("deeper.tar");
    std::fs::write(&out, t.into_inner().unwrap()).unwrap();
    out.display().to_string()
}

/// A gzip'd layer tar of one file of `size` zero bytes, streamed into
/// `out` by the host's gzip (never held in memory; the test binary's
/// unoptimised deflate would take minutes): (diff-id, blob digest, size).
fn gzip_bomb(size: u64, out: &std::path::Path) -> (String, String, u64) {
    let dir = out.parent().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    std::fs::write(dir.join("bomb-head"), h.as_bytes()).unwrap();
    let pad = (512 - size % 512) % 512;
    std::fs::write(dir.join("bomb-tail"), vec![0u8; pad as usize + 1024]).unwrap();
    let script = format!(
        "set -e; cd {d}; {{ cat bomb-head; head -c {size} /dev/zero; cat bomb-tail; }} \
         | tee >(sha256sum > bomb-diff) | gzip -9 > {out}; sleep 0.1; \
         while [ ! -s bomb-diff ]; do sleep 0.1; done",
        d = dir.display(),
        out = out.display()
    );
    let o = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let hex = |p: &std::path::Path| {
        let o = std::process::Command::new("sha256sum")
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)[..64].to_string()
    };
    let diff = std::fs::read_to_string(dir.join("bomb-diff")).unwrap()[..64].to_string();
    (
        format!("sha256:{diff}"),
        format!("sha256:{}", hex(out)),
        std::fs::metadata(out).unwrap().len(),
    )
}

/// Issue 20: a decompression bomb — a layer of zeros whose gzip expands
/// 1000:1 — is refused by `pull`, `run` (which pulls it) and `load` once
/// it passes the store's bound (100 times its compressed size, or the
/// floor if larger), with what happened and what to do; nothing of it
/// stays (no image, layer, blob, download or work dir). The default floor
/// is 1 GiB; the test lowers it to 16 MiB and uses a 256 MiB bomb, so the
/// debug binary does not decompress gigabytes (a 3 GiB bomb against the
/// defaults and the release binary: docs/architecture.md).
#[test]
#[ignore = "root: uses a state root"]
fn decompression_bombs_are_refused_and_leave_nothing() {
    let b = Berth::empty();
    let settings = |extra: &str| {
        std::fs::write(
            b.path().join("config/berth.toml"),
            format!("[network]\nip_forward = false\n[storage]\nlayer_expansion_floor = \"16m\"\n{extra}"),
        )
        .unwrap()
    };
    settings("");
    let bomb = b.path().join("bomb.tar.gz");
    let (diff, blob, blob_size) = gzip_bomb(256 << 20, &bomb);
    assert!(blob_size < 512 << 10, "the bomb is {blob_size} bytes");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["true"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let config_digest = fake::sha(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{blob}","size":{blob_size}}}]}}"#,
        config.len()
    );
    let bomb_bytes = std::fs::read(&bomb).unwrap();
    let mut blobs = std::collections::HashMap::new();
    blobs.insert(config_digest.clone(), config.as_bytes().to_vec());
    blobs.insert(blob.clone(), bomb_bytes.clone());
    let mut manifests = std::collections::HashMap::new();
    manifests.insert(
        "1".to_string(),
        (
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            manifest.as_bytes().to_vec(),
        ),
    );
    let reg = fake::Fake::start(fake::serve_image("ns/bomb", manifests, blobs));
    let r = format!("{}/ns/bomb:1", reg.addr);

    let untouched = |what: &str| {
        assert_eq!(b.ok(&["images", "-aq"]), "", "{what}");
        for d in ["layers", "tmp", "downloads", "blobs/sha256"] {
            let p = b.root.join(d);
            let left: Vec<_> = std::fs::read_dir(&p)
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{what}: {} holds {left:?}", p.display());
        }
        assert_census_clean(&b);
    };
    let refused = |o: &std::process::Output, code_want: i32, what: &str| {
        let err = stderr(o);
        assert_eq!(code(o), code_want, "{what}: {err}");
        assert!(
            err.contains("decompression bomb")
                && err.contains("over 100:1")
                && err.contains("layer_expansion_ratio"),
            "{what}: {err}"
        );
    };
    // pull: an engine error, exit 1 as docker's; run: 125.
    refused(&b.run(&["pull", &r]), 1, "pull");
    untouched("pull");
    refused(&b.run(&["run", "--rm", &r]), 125, "run");
    untouched("run");

    // The same layer in a docker-archive.
    let mut ar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        ar.append_data(&mut h, name, data).unwrap();
    };
    add("config.json", config.as_bytes());
    add("layer.tar.gz", &bomb_bytes);
    add(
        "manifest.json",
        br#"[{"Config":"config.json","RepoTags":["bomb:1"],"Layers":["layer.tar.gz"]}]"#,
    );
    let archive = b.path().join("bomb-archive.tar");
    std::fs::write(&archive, ar.into_inner().unwrap()).unwrap();
    refused(
        &b.run(&["load", "-i", archive.to_str().unwrap()]),
        1,
        "load",
    );
    untouched("load");

    // A trusted image that big passes once the bound is raised.
    settings("layer_expansion_ratio = 2000\n");
    b.ok(&["load", "-i", archive.to_str().unwrap()]);
    b.ok(&["rmi", "bomb:1"]);
    assert_census_clean(&b);
}

/// Issue 20: a registry that sends the headers of a layer and then a
/// byte every 3 s fails the pull once it has sent nothing for the idle
/// timeout (`idle_timeout` in registries.toml; 1 s here), with what
/// happened and what to do; the store is as it was.
#[test]
#[ignore = "root: uses a state root"]
fn a_trickling_registry_fails_the_pull() {
    let b = Berth::empty();
    std::fs::write(
        b.path().join("config/registries.toml"),
        "idle_timeout = 1\n",
    )
    .unwrap();
    let img = fake::TestImage::new(1, 100_000, "amd64");
    let layer = fake::sha(&img.layers[0]);
    let blobs = img.blobs();
    let inner = fake::serve_image("ns/slow", fake::manifests_for(&img, "1"), blobs.clone());
    let reg = fake::Fake::start(move |req| {
        if req.path.ends_with(&layer) && req.method == "GET" {
            return fake::Resp::Trickle {
                status: 200,
                headers: vec![],
                body: blobs[&layer].clone(),
                piece: 1,
                every: std::time::Duration::from_secs(3),
            };
        }
        inner(req)
    });
    let o = b.run(&["pull", &format!("{}/ns/slow:1", reg.addr)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("registry {} sent nothing for 1 s", reg.addr)),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.ok(&["images", "-aq"]), "");
    assert_census_clean(&b);
}

/// A registry served over TLS and listed as secure (not loopback's
/// default insecure) whose bearer challenge names an `http://` token realm:
/// berth refuses to fetch a token there, so the saved credentials never go
/// out in clear text (the token server sees no request at all); the same
/// registry with an `https://` realm works, the credentials going there.
#[test]
#[ignore = "root: starts containers"]
fn a_tls_registry_never_gets_credentials_sent_to_an_http_token_realm() {
    let b = Berth::new();
    let secure = |b: &Berth, reg: &registry::TokenRegistry| {
        let cfg = b.path().join("config");
        std::fs::write(
            cfg.join("registries.toml"),
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = false\n",
                reg.addr
            ),
        )
        .unwrap();
        let certs = cfg.join("certs.d").join(&reg.addr);
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::copy(reg.ca(), certs.join("ca.crt")).unwrap();
        // Saved credentials, as `login` would leave them.
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode("u:secret-pw");
        let dc = b.path().join("docker-config");
        std::fs::create_dir_all(&dc).unwrap();
        std::fs::write(
            dc.join("config.json"),
            format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", reg.addr),
        )
        .unwrap();
    };

    let plain = registry::TokenRegistry::start(false);
    assert!(plain.realm.starts_with("http://"));
    secure(&b, &plain);
    let image = format!("{}/t/app:1", plain.addr);
    b.ok(&["tag", IMAGE, &image]);
    for args in [vec!["push", image.as_str()], vec!["pull", image.as_str()]] {
        let o = b.run(&args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&plain.realm) && err.contains("not https") && err.contains("clear text"),
            "{args:?}: the refusal says why: {err}"
        );
    }
    let o = b.run_stdin(
        &["login", "-u", "u", "--password-stdin", &plain.addr],
        b"secret-pw\n",
    );
    assert_eq!(code(&o), 1, "login: {}", stderr(&o));
    assert!(stderr(&o).contains("not https"), "login: {}", stderr(&o));
    assert_eq!(
        plain.token_requests(),
        Vec::<String>::new(),
        "the http token server was asked"
    );
    b.ok(&["rmi", &image]);

    let tls = registry::TokenRegistry::start(true);
    assert!(tls.realm.starts_with("https://"));
    secure(&b, &tls);
    let image = format!("{}/t/app:1", tls.addr);
    b.ok(&["tag", IMAGE, &image]);
    b.ok(&["push", &image]);
    b.ok(&["rmi", &image]);
    b.ok(&["pull", &image]);
    assert_eq!(
        b.ok(&["run", "--rm", &image, "echo", "tokens ok"]),
        "tokens ok\n"
    );
    let asked = tls.token_requests();
    assert!(!asked.is_empty());
    for r in &asked {
        assert!(
            r.ends_with("Basic dTpzZWNyZXQtcHc="),
            "credentials to the https realm: {r}"
        );
    }
    b.ok(&["rmi", &image]);
    assert_census_clean(&b);
}
