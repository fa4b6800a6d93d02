//! `berth scan`: an image built here from the debootstrap base plus a
//! Python distribution and a Node package, matched against an OSV
//! database the test writes — entries that must match (a Debian source
//! package with an epoch, `~` versions, an unfixed one, a PyPI range under
//! another spelling of the name, an npm SEMVER range) and entries that
//! must not (fixed before, another release or ecosystem, withdrawn) —
//! downloaded by `scan db update` from an HTTP server on 127.0.0.1 the
//! test runs; the filters, `--exit-code`, the JSON and SARIF forms; a
//! missing, damaged and expired database.
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// An RFC 3339 time `days` days ago.
fn days_ago(days: u64) -> String {
    let o = Command::new("date")
        .args(["-u", "-d", &format!("-{days} days"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    stdout(&o).trim().to_string()
}

/// An OSV record: `events` are (kind, version) pairs of one range.
fn osv(
    id: &str,
    modified: &str,
    eco: &str,
    name: &str,
    range: &str,
    events: &[(&str, &str)],
) -> Value {
    let events: Vec<Value> = events.iter().map(|(k, v)| json!({ *k: v })).collect();
    json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": modified,
        "aliases": [format!("CVE-ALIAS-{id}")],
        "summary": format!("{id}: a test advisory for {name}"),
        "affected": [{"package": {"ecosystem": eco, "name": name},
                      "ranges": [{"type": range, "events": events}]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    })
}

/// A zip of OSV records (`<id>.json` each), made with Python's zipfile.
fn zip_of(path: &Path, records: &[Value]) {
    let dir = path.with_extension("d");
    std::fs::create_dir_all(&dir).unwrap();
    for r in records {
        write(
            &dir,
            &format!("{}.json", r["id"].as_str().unwrap()),
            r.to_string().as_bytes(),
        );
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let st = Command::new("python3")
        .args([
            "-c",
            "import sys, os, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   for n in sorted(os.listdir(sys.argv[2])):\n\
             \x20       z.write(os.path.join(sys.argv[2], n), n)\n",
        ])
        .arg(path)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A static file server on 127.0.0.1 for `root`, one thread, answering
/// each request and closing; its base URL. Requests are counted in `log`.
fn serve(root: PathBuf) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            log2.lock().unwrap().push(path.clone());
            let file = root.join(path.trim_start_matches('/'));
            let _ = match std::fs::read(&file) {
                Ok(body) if !path.contains("..") => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    s.write_all(&body)
                }
                _ => s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    (url, log)
}

/// The version of package `name` in the image's SBOM table.
fn sbom_version(b: &Berth, image: &str, name: &str) -> String {
    let t = b.ok(&["sbom", image]);
    t.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 3 && f[0] == name)
        .unwrap_or_else(|| panic!("no {name} in the SBOM:\n{t}"))[1]
        .to_string()
}

fn ids(report: &Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["package"].as_str().unwrap().to_string(),
                f["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn scan_of_a_debian_image_against_an_osv_database_served_here() {
    let b = Berth::new();
    import_debian(&b);
    let ctx = b.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        b"FROM debian:bookworm\nCOPY site/ /usr/local/lib/python3.11/dist-packages/\nCOPY app/ /app/\n",
    );
    write(
        &ctx,
        "site/requests-2.28.1.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n\n",
    );
    write(
        &ctx,
        "app/node_modules/left-pad/package.json",
        br#"{"name":"left-pad","version":"1.1.0"}"#,
    );
    let o = b.run(&["build", "-t", "app:1", ctx.to_str().unwrap()]);
    assert!(o.status.success(), "build: {}", stderr(&o));

    // No database yet: a clear refusal, 1 (as trivy's fatal errors).
    let o = b.run(&["scan", "app:1"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("berth scan db update"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("berth scan db import"),
        "{}",
        stderr(&o)
    );

    // The installed versions the entries are written against.
    let login = sbom_version(&b, "app:1", "login"); // shadow, with an epoch: 1:4.13+dfsg1-1
    let zlib = sbom_version(&b, "app:1", "zlib1g"); // zlib, 1:1.2.13.dfsg-1
    assert!(login.starts_with("1:"), "{login}");
    assert!(zlib.starts_with("1:"), "{zlib}");
    let upstream = |v: &str| {
        v.split_once(':')
            .unwrap()
            .1
            .rsplit_once('-')
            .unwrap()
            .0
            .to_string()
    };
    let now = days_ago(1);
    let debian = [
        // Must match: the source package (login, passwd…), fixed above it.
        osv(
            "DSA-T-1",
            &now,
            "Debian:12",
            "shadow",
            "ECOSYSTEM",
            &[("introduced", "0"), ("fixed", &format!("{login}+deb12u9"))],
        ),
        // Must not: fixed at 4.14 without an epoch — below 1:4.13.
        osv(
            "DSA-T-2",
            &now,
            "Debian:12",
            "shadow",
            "ECOSYSTEM",
            &[("introduced", "0"), ("fixed", "4.14-1")],
        ),
        // Must not: fixed at a ~ version of the installed one (below it),
        // where a string compare would call it newer.
        osv(
            "DSA-T-3",
            &now,
            "Debian:12",
            "zlib",
            "ECOSYSTEM",
            &[("introduced", "0"), ("fixed", &format!("{zlib}~deb12u1"))],
        ),
        // Must match: a ~ pre-release of the next upstream is above it.
        osv(
            "DSA-T-4",
            &now,
            "Debian:12",
            "zlib",
            "ECOSYSTEM",
            &[
                ("introduced", "0"),
                ("fixed", &format!("1:{}.1~rc1-1", upstream(&zlib))),
            ],
        ),
        // Must match, unfixed.
        osv(
            "DEBIAN-CVE-T-5",
            &now,
            "Debian:12",
            "zlib",
            "ECOSYSTEM",
            &[("introduced", "0")],
        ),
        // Must not: another release.
        osv(
            "DSA-T-6",
            &now,
            "Debian:11",
            "shadow",
            "ECOSYSTEM",
            &[("introduced", "0")],
        ),
        // Must not: withdrawn.
        {
            let mut w = osv(
                "DSA-T-7",
                &now,
                "Debian:12",
                "zlib",
                "ECOSYSTEM",
                &[("introduced", "0")],
            );
            w["withdrawn"] = json!(now);
            w
        },
    ];
    let pypi = [
        // Must match: another spelling of the name, a PEP 440 range.
        osv(
            "PYSEC-T-8",
            &now,
            "PyPI",
            "Requests",
            "ECOSYSTEM",
            &[("introduced", "2.0.0"), ("fixed", "2.31.0")],
        ),
        // Must not: fixed before.
        osv(
            "PYSEC-T-9",
            &now,
            "PyPI",
            "requests",
            "ECOSYSTEM",
            &[("introduced", "0"), ("fixed", "2.20.0")],
        ),
    ];
    let npm = [
        // Must match: a SEMVER range.
        osv(
            "GHSA-T-10",
            &now,
            "npm",
            "left-pad",
            "SEMVER",
            &[("introduced", "0"), ("fixed", "1.3.0")],
        ),
        // Must not: introduced later (pre-releases of 2.0.0 included).
        osv(
            "GHSA-T-11",
            &now,
            "npm",
            "left-pad",
            "SEMVER",
            &[("introduced", "2.0.0-beta.1")],
        ),
        // Must not: another ecosystem with the same name.
        osv(
            "GHSA-T-12",
            &now,
            "PyPI",
            "left-pad",
            "ECOSYSTEM",
            &[("introduced", "0")],
        ),
    ];
    let www = b.path().join("www");
    zip_of(&www.join("osv/Debian/all.zip"), &debian);
    zip_of(&www.join("osv/PyPI/all.zip"), &pypi);
    zip_of(&www.join("osv/npm/all.zip"), &npm);
    let (url, log) = serve(www.clone());

    // A mirror that lacks one archive: nothing is imported.
    let o = b.run(&[
        "scan",
        "db",
        "update",
        "--from",
        &format!("{url}/osv"),
        "--ecosystem",
        "Debian,Go",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Go/all.zip") && stderr(&o).contains("404"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&b.run(&["scan", "db", "info"])), 1);

    let o = b.ok(&[
        "scan",
        "db",
        "update",
        "--from",
        &format!("{url}/osv"),
        "--ecosystem",
        "Debian,PyPI,npm",
    ]);
    assert!(o.contains("imported 12 records"), "{o}");
    let requested = log.lock().unwrap().clone();
    assert!(
        requested.contains(&"/osv/npm/all.zip".to_string()),
        "{requested:?}"
    );
    let info: Value =
        serde_json::from_str(&b.ok(&["scan", "db", "info", "--format", "json"])).unwrap();
    assert_eq!(
        (info["advisories"].as_u64(), info["withdrawn"].as_u64()),
        (Some(11), Some(1))
    );

    // The scan: the findings and only them.
    let o = b.run(&["scan", "--format", "json", "app:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("11 advisories") && stderr(&o).contains("(1 day old)"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let got = ids(&r);
    let by_id: BTreeSet<&str> = got.iter().map(|(_, i)| i.as_str()).collect();
    assert_eq!(
        by_id,
        [
            "DSA-T-1",
            "DSA-T-4",
            "DEBIAN-CVE-T-5",
            "PYSEC-T-8",
            "GHSA-T-10"
        ]
        .into_iter()
        .collect(),
        "{got:?}"
    );
    // Every binary package of the source is reported.
    assert!(got.contains(&("login".into(), "DSA-T-1".into())), "{got:?}");
    assert!(
        got.contains(&("passwd".into(), "DSA-T-1".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("zlib1g".into(), "DEBIAN-CVE-T-5".into())),
        "{got:?}"
    );
    let f = r["findings"].as_array().unwrap();
    let pysec = f.iter().find(|x| x["id"] == "PYSEC-T-8").unwrap();
    assert_eq!(
        (pysec["installed"].as_str(), pysec["fixed"].as_str()),
        (Some("2.28.1"), Some("2.31.0"))
    );
    assert_eq!(pysec["severity"], "CRITICAL");
    assert!(f
        .iter()
        .any(|x| x["id"] == "DEBIAN-CVE-T-5" && x["fixed"].is_null()));

    // The table, --exit-code, the filters.
    let o = b.run(&["scan", "--exit-code", "3", "app:1"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(code(&b.run(&["scan", "--exit-code", "125", "app:1"])), 125);
    let t = stdout(&o);
    let head: Vec<&str> = t.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["PACKAGE", "INSTALLED", "FIXED", "SEVERITY", "ID", "TITLE"]
    );
    assert!(t.contains("GHSA-T-10") && t.contains("Total: "), "{t}");
    let o = b.run(&[
        "scan",
        "--exit-code",
        "3",
        "--severity",
        "LOW,MEDIUM",
        "app:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Total: 0"), "{}", stdout(&o));
    let o = b.ok(&["scan", "--format", "json", "--ignore-unfixed", "app:1"]);
    let r: Value = serde_json::from_str(&o).unwrap();
    assert!(!ids(&r).iter().any(|(_, i)| i == "DEBIAN-CVE-T-5"));
    let ignore = b.path().join("ignore");
    std::fs::write(&ignore, "# accepted risks\nDSA-T-1\nCVE-ALIAS-GHSA-T-10  # by its alias\nPYSEC-T-8 exp:2001-01-01\n").unwrap();
    let o = b.ok(&[
        "scan",
        "--format",
        "json",
        "--ignorefile",
        ignore.to_str().unwrap(),
        "app:1",
    ]);
    let r: Value = serde_json::from_str(&o).unwrap();
    let left: BTreeSet<String> = ids(&r).into_iter().map(|(_, i)| i).collect();
    assert_eq!(
        left,
        ["DSA-T-4", "DEBIAN-CVE-T-5", "PYSEC-T-8"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );

    // SARIF 2.1.0, checked for its structure: every result names a rule
    // of the driver by id and index, levels from the severities.
    let sarif_path = b.path().join("scan.sarif");
    b.ok(&[
        "scan",
        "--format",
        "sarif",
        "-o",
        sarif_path.to_str().unwrap(),
        "app:1",
    ]);
    let s: Value = serde_json::from_slice(&std::fs::read(&sarif_path).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 5);
    for res in run["results"].as_array().unwrap() {
        let i = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], res["ruleId"]);
        assert_eq!(res["level"], "error");
        assert!(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
    }
    assert_census_clean(&b);
}

#[test]
fn an_expired_or_damaged_database_is_refused() {
    let b = Berth::new();
    let osv_dir = b.root.join("supply/osv");
    let old = b.path().join("old.json");
    std::fs::write(
        &old,
        osv(
            "DSA-OLD",
            &days_ago(60),
            "Debian:12",
            "x",
            "ECOSYSTEM",
            &[("introduced", "0")],
        )
        .to_string(),
    )
    .unwrap();
    let o = b.ok(&["scan", "db", "import", old.to_str().unwrap()]);
    assert!(o.contains("imported 1 records"), "{o}");
    // 60 days: over the default 30, refused.
    let o = b.run(&["scan", IMAGE]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("60 days old"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("berth scan db update"),
        "{}",
        stderr(&o)
    );
    // Allowed: scanned, with a warning.
    let o = b.run(&["scan", "--db-max-age", "0", IMAGE]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the vulnerability database is 60 days old"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("Total: 0"), "{}", stdout(&o));
    // berth.toml sets both ages.
    let cfg = b.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("berth.toml"),
        "[network]\nip_forward = false\n[scan]\ndb_warn_days = 90\ndb_max_days = 100\n",
    )
    .unwrap();
    let o = b.run(&["scan", IMAGE]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));

    // A damaged database: a clear refusal, nothing written.
    let db = osv_dir.join("osv.db");
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let o = b.run(&["scan", IMAGE]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("is damaged"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&db).unwrap(), vec![b'x'; 4096]);
    // A bad archive changes nothing either; a good one replaces it.
    let junk = b.path().join("junk.zip");
    std::fs::write(&junk, b"PK\x03\x04 not really").unwrap();
    let o = b.run(&["scan", "db", "import", junk.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("nothing was imported"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&db).unwrap(), vec![b'x'; 4096]);
    b.ok(&["scan", "db", "import", old.to_str().unwrap()]);
    assert!(b.run(&["scan", IMAGE]).status.success());
    assert_census_clean(&b);
}
