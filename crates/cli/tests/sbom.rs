//! `berth sbom`: images built here from the debootstrap base (apt-get, a
//! Python distribution, Node packages, a Go binary built with Debian's
//! golang, a jar), their package lists compared with `dpkg-query` and
//! `go version -m` run on the same content, the documents checked by the
//! real validators (`pyspdxtools` of PyPI's spdx-tools, and
//! cyclonedx-python-lib's strict JSON validator, installed by
//! scripts/deps in /opt/berth-tests/sbom), and hostile images: symlinks
//! out of the image, a corrupt dpkg status, a forged Go build info, an
//! oversized package.json.
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const VENV: &str = "/opt/berth-tests/sbom/bin";

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// `go build` of a module-mode hello world, offline (no dependencies, no
/// proxy), into `out`.
fn build_go(b: &Berth, out: &Path) {
    let src = b.path().join("gosrc");
    write(&src, "go.mod", b"module example.com/hello\n\ngo 1.19\n");
    write(
        &src,
        "main.go",
        b"package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from go\") }\n",
    );
    let st = Command::new("go")
        .args(["build", "-o"])
        .arg(out)
        .arg(".")
        .current_dir(&src)
        .env("GOCACHE", b.path().join("gocache"))
        .env("GOPATH", b.path().join("gopath"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("go (scripts/deps installs golang-go)");
    assert!(st.success(), "go build failed");
}

/// A jar with Maven's pom.properties, made with Python's zipfile.
fn make_jar(path: &Path) {
    let st = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   z.writestr('META-INF/MANIFEST.MF', 'Manifest-Version: 1.0\\n')\n\
             \x20   z.writestr('META-INF/maven/org.example/demo/pom.properties', 'groupId=org.example\\nartifactId=demo\\nversion=1.0.0\\n')\n\
             \x20   z.writestr('org/example/Demo.class', b'\\xca\\xfe\\xba\\xbe')\n",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

fn validate_spdx(file: &Path) {
    let o = Command::new(format!("{VENV}/pyspdxtools"))
        .arg("-i")
        .arg(file)
        .output()
        .expect("pyspdxtools (scripts/deps installs spdx-tools)");
    assert!(
        o.status.success(),
        "pyspdxtools refused {}: {}{}",
        file.display(),
        stdout(&o),
        stderr(&o)
    );
}

fn validate_cyclonedx(file: &Path) {
    let o = Command::new(format!("{VENV}/python"))
        .args([
            "-c",
            "import sys\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             from cyclonedx.schema import SchemaVersion\n\
             e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
             print(e)\n\
             sys.exit(1 if e else 0)\n",
        ])
        .arg(file)
        .output()
        .expect("cyclonedx-python-lib (scripts/deps installs it)");
    assert!(
        o.status.success(),
        "the CycloneDX 1.6 validator refused {}: {}{}",
        file.display(),
        stdout(&o),
        stderr(&o)
    );
}

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// (name, version) of the table's rows of TYPE `ty`.
fn table_rows(table: &str, ty: &str) -> BTreeSet<(String, String)> {
    let mut lines = table.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["NAME", "VERSION", "TYPE"]);
    lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 3 && f[2] == ty)
        .map(|f| (f[0].to_string(), f[1].to_string()))
        .collect()
}

/// A CycloneDX component's property.
fn prop<'a>(c: &'a Value, name: &str) -> &'a str {
    c["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {c}"))
}

fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

#[test]
fn sbom_of_a_debian_image_matches_dpkg_query_and_passes_the_validators() {
    let b = Berth::new();
    import_debian(&b);
    let ctx = b.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        br#"FROM debian:bookworm
RUN --network=host apt-get update -qq && apt-get install -y -qq --no-install-recommends hello tree >/dev/null && rm -rf /var/lib/apt/lists/*
RUN dpkg --purge tree
COPY site/ /usr/local/lib/python3.11/dist-packages/
COPY app/ /app/
COPY web/ /srv/web/
COPY hello-go /usr/local/bin/hello-go
COPY demo.jar /opt/demo.jar
"#,
    );
    write(
        &ctx,
        "site/demo_pkg-1.2.3.dist-info/METADATA",
        b"Metadata-Version: 2.4\nName: demo_pkg\nVersion: 1.2.3\nLicense-Expression: MIT\n\nA demo.\n",
    );
    write(
        &ctx,
        "site/old_thing-0.9.egg-info",
        b"Metadata-Version: 1.1\nName: old-thing\nVersion: 0.9\nLicense: BSD-3-Clause\n",
    );
    write(
        &ctx,
        "app/package.json",
        br#"{"name":"the-app","version":"0.0.1","dependencies":{"left-pad":"1"}}"#,
    );
    write(
        &ctx,
        "app/node_modules/left-pad/package.json",
        br#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#,
    );
    write(
        &ctx,
        "app/node_modules/@demo/thing/package.json",
        br#"{"name":"@demo/thing","version":"2.0.0","license":{"type":"ISC"}}"#,
    );
    // A lock file beside installed node_modules adds nothing (the
    // package.json files are what is installed); one without them (an app
    // copied with its lock only) lists what it pins.
    write(
        &ctx,
        "app/package-lock.json",
        br#"{"lockfileVersion":3,"packages":{"":{"name":"the-app"},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/not-installed":{"version":"0.1.0","dev":true}}}"#,
    );
    write(
        &ctx,
        "web/package-lock.json",
        br#"{"lockfileVersion":2,"packages":{"":{"name":"web"},"node_modules/express":{"version":"4.18.2","license":"MIT"}}}"#,
    );
    // yarn's (classic) and pnpm's lock files, as apps copied with them.
    write(
        &ctx,
        "web/yarn/yarn.lock",
        b"# yarn lockfile v1\n\n\"@types/node@^20.0.0\":\n  version \"20.11.5\"\n\nlodash@^4.17.21:\n  version \"4.17.21\"\n",
    );
    write(
        &ctx,
        "web/pnpm/pnpm-lock.yaml",
        b"lockfileVersion: '9.0'\npackages:\n  react@18.2.0:\n    resolution: {integrity: sha512-z}\n",
    );
    build_go(&b, &ctx.join("hello-go"));
    make_jar(&ctx.join("demo.jar"));
    let o = b.run(&[
        "build",
        "--allow",
        "network.host",
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "build: {}", stderr(&o));
    let layers: Vec<String> = serde_json::from_str(&b.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        "app:1",
    ]))
    .unwrap();
    assert_eq!(layers.len(), 8, "{layers:?}");

    // The Debian packages are what dpkg-query says inside the image.
    let table = b.ok(&["sbom", "app:1"]);
    let dq = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "dpkg-query",
        "-W",
        "-f",
        "${db:Status-Status} ${Package} ${Version}\n",
    ]);
    let installed: BTreeSet<(String, String)> = dq
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    assert!(installed.len() > 80, "{dq}");
    assert_eq!(table_rows(&table, "deb"), installed);
    assert!(installed.iter().any(|(n, _)| n == "hello"));
    assert!(!installed.iter().any(|(n, _)| n == "tree"), "purged");
    let set = |v: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        table_rows(&table, "python"),
        set(&[("demo_pkg", "1.2.3"), ("old-thing", "0.9")])
    );
    assert_eq!(
        table_rows(&table, "npm"),
        set(&[
            ("@demo/thing", "2.0.0"),
            ("@types/node", "20.11.5"),
            ("express", "4.18.2"),
            ("left-pad", "1.3.0"),
            ("lodash", "4.17.21"),
            ("react", "18.2.0")
        ])
    );
    assert_eq!(
        table_rows(&table, "java-archive"),
        set(&[("demo", "1.0.0")])
    );
    // The Go modules are what `go version -m` reads from the binary.
    let gv = Command::new("go")
        .args(["version", "-m"])
        .arg(ctx.join("hello-go"))
        .output()
        .unwrap();
    let gv = stdout(&gv);
    let go_version = gv.lines().next().unwrap().rsplit(' ').next().unwrap();
    assert!(gv.contains("\tmod\texample.com/hello\t(devel)"), "{gv}");
    assert_eq!(
        table_rows(&table, "go-module"),
        set(&[("example.com/hello", "(devel)"), ("stdlib", go_version)])
    );

    // Both documents pass their validators and say the same.
    let spdx = b.path().join("app.spdx.json");
    let cdx = b.path().join("app.cdx.json");
    b.ok(&[
        "sbom",
        "--format",
        "spdx-json",
        "-o",
        spdx.to_str().unwrap(),
        "app:1",
    ]);
    b.ok(&[
        "sbom",
        "--format",
        "cyclonedx-json",
        "-o",
        cdx.to_str().unwrap(),
        "app:1",
    ]);
    validate_spdx(&spdx);
    validate_cyclonedx(&cdx);
    let s = json_file(&spdx);
    let c = json_file(&cdx);
    let rows = table.lines().count() - 1;
    assert_eq!(s["packages"].as_array().unwrap().len(), rows + 1);
    assert_eq!(c["components"].as_array().unwrap().len(), rows);
    assert_eq!(c["metadata"]["component"]["type"], "container");
    assert_eq!(s["packages"][0]["primaryPackagePurpose"], "CONTAINER");

    // Each package comes from the layer that brought it.
    let libc = component(&c, "libc6");
    assert_eq!(prop(libc, "berth:layer"), layers[0]);
    let purl = libc["purl"].as_str().unwrap();
    assert!(
        purl.starts_with("pkg:deb/debian/libc6@") && purl.contains("arch=amd64&distro=debian-12"),
        "{purl}"
    );
    let hello = component(&c, "hello");
    assert_eq!(prop(hello, "berth:layer"), layers[1]);
    let demo = component(&c, "demo_pkg");
    assert_eq!(prop(demo, "berth:layer"), layers[3]);
    assert_eq!(demo["purl"], "pkg:pypi/demo-pkg@1.2.3");
    assert_eq!(demo["licenses"][0]["license"]["id"], "MIT");
    let thing = component(&c, "@demo/thing");
    assert_eq!(prop(thing, "berth:layer"), layers[4]);
    assert_eq!(thing["purl"], "pkg:npm/%40demo/thing@2.0.0");
    let express = component(&c, "express");
    assert_eq!(
        prop(express, "berth:location"),
        "/srv/web/package-lock.json"
    );
    assert_eq!(prop(express, "berth:layer"), layers[5]);
    let lodash = component(&c, "lodash");
    assert_eq!(lodash["purl"], "pkg:npm/lodash@4.17.21");
    assert_eq!(prop(lodash, "berth:location"), "/srv/web/yarn/yarn.lock");
    assert_eq!(component(&c, "@types/node")["version"], "20.11.5");
    let react = component(&c, "react");
    assert_eq!(react["purl"], "pkg:npm/react@18.2.0");
    assert_eq!(
        prop(react, "berth:location"),
        "/srv/web/pnpm/pnpm-lock.yaml"
    );
    let go = component(&c, "example.com/hello");
    assert_eq!(prop(go, "berth:layer"), layers[6]);
    assert_eq!(go["purl"], "pkg:golang/example.com/hello");
    assert_eq!(prop(go, "berth:location"), "/usr/local/bin/hello-go");
    let jar = component(&c, "demo");
    assert_eq!(jar["purl"], "pkg:maven/org.example/demo@1.0.0");
    assert_eq!(jar["group"], "org.example");
    // A machine-readable copyright file (DEP-5) gives a Debian package's
    // licence; zlib's says Zlib.
    let zlib = s["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "zlib1g")
        .unwrap();
    assert_eq!(zlib["licenseDeclared"], "Zlib");
    assert_eq!(
        component(&c, "zlib1g")["licenses"][0]["license"]["id"],
        "Zlib"
    );

    // Every layer's scan is cached by its diff-id, and the cache answers
    // the same.
    let cache = b.root.join("cache/sbom");
    let cached: BTreeSet<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = layers
        .iter()
        .map(|l| format!("{}.json", l.trim_start_matches("sha256:")))
        .collect();
    assert_eq!(cached, want);
    assert_eq!(b.ok(&["sbom", "app:1"]), table);
    // No half-written output next to -o's file.
    let names: Vec<PathBuf> = std::fs::read_dir(b.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("berth-tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // A removed image's layer scans go with its layers.
    b.ok(&["rmi", "app:1"]);
    b.ok(&["builder", "prune", "-f"]);
    b.ok(&["sbom", "debian:bookworm"]);
    let left = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(left, 1, "only the base layer's scan is left");
    assert_census_clean(&b);
}

#[test]
fn sbom_of_an_unknown_image_is_no_such_image() {
    let b = Berth::new();
    let o = b.run(&["sbom", "nosuch:1"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(stderr(&o), "berth: No such image: nosuch:1\n");
    let o = b.run(&["sbom", "--format", "xml", IMAGE]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("use spdx-json, cyclonedx-json or table"),
        "{}",
        stderr(&o)
    );
    // An image without packages is an empty list, not an error.
    assert_eq!(b.ok(&["sbom", IMAGE]), "NAME   VERSION   TYPE\n");
    assert_census_clean(&b);
}

/// Symlinks in an image pointing at the host's files are never followed:
/// a dpkg status, a site-packages directory and an os-release linked to
/// files of the host (which name packages) give nothing.
#[test]
fn sbom_never_follows_an_image_symlink_to_the_host() {
    let b = Berth::new();
    let host = b.path().join("host");
    write(
        &host,
        "status",
        b"Package: host-leak\nStatus: install ok installed\nArchitecture: amd64\nVersion: 6.6.6\n",
    );
    write(
        &host,
        "site/leak-1.0.dist-info/METADATA",
        b"Name: leak\nVersion: 1.0\n",
    );
    write(&host, "os-release", b"ID=hostleak\nVERSION_ID=1\n");
    let h = host.to_str().unwrap();
    let ctx = b.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        format!(
            "FROM {IMAGE}\nRUN mkdir -p /var/lib/dpkg /usr/lib/python3 && ln -s {h}/status /var/lib/dpkg/status && ln -s {h}/site /usr/lib/python3/dist-packages && ln -s {h}/os-release /etc/os-release && ln -s ../../../../../../..{h}/status /var/lib/dpkg/status-old\n"
        )
        .as_bytes(),
    );
    b.ok(&["build", "-q", "-t", "links:1", ctx.to_str().unwrap()]);
    let o = b.run(&["sbom", "--format", "cyclonedx-json", "links:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["components"].as_array().unwrap().len(), 0, "{doc}");
    assert!(!stdout(&o).contains("leak"), "{}", stdout(&o));
    assert_census_clean(&b);
}

/// A corrupt dpkg status is parsed as far as it goes, a Go binary with a
/// forged build info and an oversized package.json are skipped, each
/// with a note on stderr; the SBOM is made.
#[test]
fn sbom_of_hostile_package_data_is_partial_with_notes() {
    let b = Berth::new();
    let ctx = b.path().join("ctx");
    let mut status =
        b"Package: good\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n"
            .to_vec();
    status.extend_from_slice(
        b"\x00\xff\xfegarbage without a colon\nPackage: spoiled\nVersion: 2\n\n",
    );
    status.extend_from_slice(b"Package: noversion\nStatus: install ok installed\n");
    write(&ctx, "status", &status);
    build_go(&b, &ctx.join("forged"));
    let mut bin = std::fs::read(ctx.join("forged")).unwrap();
    let magic = b"\xff Go buildinf:";
    let at = bin
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("the Go binary has build info");
    // The version string's length: a varint far past the section.
    bin[at + 32..at + 37].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    std::fs::write(ctx.join("forged"), &bin).unwrap();
    let mut big = br#"{"name":"big","version":"1.0.0","description":""#.to_vec();
    big.resize(2 << 20, b'x');
    big.extend_from_slice(b"\"}");
    write(&ctx, "big/package.json", &big);
    write(
        &ctx,
        "Dockerfile",
        format!(
            "FROM {IMAGE}\nCOPY status /var/lib/dpkg/status\nCOPY forged /usr/local/bin/forged\nCOPY big/ /app/node_modules/big/\n"
        )
        .as_bytes(),
    );
    std::fs::set_permissions(
        ctx.join("forged"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.ok(&["build", "-q", "-t", "hostile:1", ctx.to_str().unwrap()]);
    let o = b.run(&["sbom", "hostile:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "NAME   VERSION   TYPE\ngood   1.0-1     deb\n");
    let err = stderr(&o);
    assert!(
        err.contains("/var/lib/dpkg/status: 1 malformed paragraph(s) skipped"),
        "{err}"
    );
    assert!(
        err.contains("1 paragraph(s) without Package or Version skipped"),
        "{err}"
    );
    assert!(
        err.contains("/usr/local/bin/forged: Go build info skipped"),
        "{err}"
    );
    assert!(
        err.contains("/app/node_modules/big/package.json: skipped: 2097154 bytes"),
        "{err}"
    );
    let spdx = b.path().join("hostile.spdx.json");
    b.ok(&[
        "sbom",
        "--format",
        "spdx-json",
        "-o",
        spdx.to_str().unwrap(),
        "hostile:1",
    ]);
    validate_spdx(&spdx);
    assert_census_clean(&b);
}

/// A layer missing from a damaged store is named, with what to do.
#[test]
fn sbom_of_an_image_whose_layer_is_gone_says_what_to_do() {
    let b = Berth::new();
    // The test removes a layer directory on purpose.
    b.expect_damage();
    let layers: Vec<String> =
        serde_json::from_str(&b.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", IMAGE]))
            .unwrap();
    let dir = b
        .root
        .join("layers")
        .join(layers[0].trim_start_matches("sha256:"));
    std::fs::rename(&dir, b.path().join("moved-layer")).unwrap();
    let o = b.run(&["sbom", IMAGE]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("layer {} of image {IMAGE}", layers[0]))
            && err.contains("is missing from the store")
            && err.contains("berth rmi bb:test"),
        "{err}"
    );
    assert_eq!(stdout(&o), "");
}
