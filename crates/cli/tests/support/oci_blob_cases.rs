//! The blob API cases (the suite's TestBlobAPIs), per digest algorithm:
//! a missing blob, every upload kind, mounts, a cancelled upload, ranges,
//! the empty blob and `{}`, wrong digests.
use super::*;

impl Runner {
    pub(super) fn blob_apis(&mut self, algo: Algo) {
        let group = format!("blobs {}", algo.name());
        self.group(&group, |r| {
            let repo = r.repo.clone();
            let repo2 = r.repo2.clone();
            let mut set = DataSet::new("blobs");
            let small = Gen {
                algo,
                blob_size: 512,
                ..Gen::default()
            };
            let missing = set.gen_blob(&small);
            r.case("get-missing", |r| {
                let t = r.v2(&repo, &format!("blobs/{missing}"));
                let resp = r.call(Request::new("GET", t), &[404])?;
                r.check_error(&resp, &["BLOB_UNKNOWN"], "GET of a missing blob")
            });
            let simple = [
                ("post only", Upload::PostOnly),
                ("post+put", Upload::PostPut),
                (
                    "chunked single",
                    Upload::Chunked {
                        put_last: false,
                        out_of_order: false,
                    },
                ),
                ("stream", Upload::Stream),
            ];
            for (name, how) in simple {
                let dig = set.gen_blob(&small);
                let bytes = set.blobs[&dig].clone();
                r.case(name, |r| {
                    r.upload(&repo, &dig, &bytes, how, Content::Matches)?;
                    r.head_blob(&repo, &dig, &bytes)?;
                    r.get_blob(&repo, &dig, &bytes)?;
                    r.delete_blob(&repo, &dig)
                });
            }
            // Three chunks of the registry's minimum (as learnt from the
            // single chunk's POST), less 5 bytes.
            let chunked = [
                ("chunked multi", false, false),
                ("chunked multi and put chunk", true, false),
                ("chunked out-of-order", false, true),
                ("chunked out-of-order and put chunk", true, true),
            ];
            for (name, put_last, out_of_order) in chunked {
                if out_of_order && !r.caps.chunk_order {
                    r.skip(name, "chunks at any offset are taken");
                    continue;
                }
                let big = Gen {
                    blob_size: r.chunk_min * 3 - 5,
                    ..small.clone()
                };
                let dig = set.gen_blob(&big);
                let bytes = set.blobs[&dig].clone();
                let how = Upload::Chunked {
                    put_last,
                    out_of_order,
                };
                r.case(name, |r| {
                    r.upload(&repo, &dig, &bytes, how, Content::Matches)?;
                    r.head_blob(&repo, &dig, &bytes)?;
                    r.get_blob(&repo, &dig, &bytes)?;
                    r.delete_blob(&repo, &dig)
                });
            }
            let dig = set.gen_blob(&small);
            let bytes = set.blobs[&dig].clone();
            r.case("mount", |r| {
                r.push_blob_any(&repo2, &dig, &bytes)?;
                let status = r.mount(&repo, Some(&repo2), &dig, &bytes)?;
                if status != 201 {
                    return Err(format!(
                        "mount of {dig} from {repo2}, where it is: {status}, expected 201"
                    ));
                }
                r.head_blob(&repo, &dig, &bytes)?;
                r.get_blob(&repo, &dig, &bytes)?;
                r.delete_blob(&repo, &dig)?;
                r.delete_blob(&repo2, &dig)
            });
            let dig = set.gen_blob(&small);
            let bytes = set.blobs[&dig].clone();
            r.case("mount anonymous", |r| {
                r.push_blob_any(&repo2, &dig, &bytes)?;
                // The spec allows both: mounted (201) or a session (202).
                let status = r.mount(&repo, None, &dig, &bytes)?;
                if status == 202 {
                    r.note("?mount= without from answered 202: pushed with a PUT (allowed)".into());
                }
                r.head_blob(&repo, &dig, &bytes)?;
                r.get_blob(&repo, &dig, &bytes)?;
                r.delete_blob(&repo, &dig)?;
                r.delete_blob(&repo2, &dig)
            });
            let dig = set.gen_blob(&small);
            let bytes = set.blobs[&dig].clone();
            r.case("mount missing", |r| {
                let status = r.mount(&repo, Some(&repo2), &dig, &bytes)?;
                if status != 202 {
                    return Err(format!(
                        "mount of {dig} from {repo2}, where it is not: {status}, expected 202 (a normal upload session)"
                    ));
                }
                r.head_blob(&repo, &dig, &bytes)?;
                r.get_blob(&repo, &dig, &bytes)?;
                r.delete_blob(&repo, &dig)
            });
            if r.caps.upload_cancel {
                let dig = set.gen_blob(&small);
                r.case("post cancel", |r| {
                    let post = r.start_upload(&repo, &dig)?;
                    let loc = r.target_of(post.header("location"), "POST")?;
                    r.call(Request::new("DELETE", loc.clone()).body(Body::Sized(&[])), &[204])?;
                    let gone = r.call(Request::new("GET", loc), &[404])?;
                    r.check_error(&gone, &["BLOB_UPLOAD_UNKNOWN"], "GET of a cancelled upload")
                });
            } else {
                r.skip("post cancel", "no upload cancel");
            }
            r.range_requests(algo, &repo);
            for (name, bytes) in [("empty", Vec::new()), ("emptyJSON", b"{}".to_vec())] {
                let dig = algo.digest(&bytes);
                r.case(name, |r| {
                    r.push_blob_any(&repo, &dig, &bytes)?;
                    r.head_blob(&repo, &dig, &bytes)?;
                    r.get_blob(&repo, &dig, &bytes)?;
                    r.delete_blob(&repo, &dig)
                });
            }
            let bad_cases = [
                ("bad digest post only", Upload::PostOnly),
                ("bad digest post+put", Upload::PostPut),
                (
                    "bad digest chunked",
                    Upload::Chunked {
                        put_last: false,
                        out_of_order: false,
                    },
                ),
                (
                    "bad digest chunked and put chunk",
                    Upload::Chunked {
                        put_last: true,
                        out_of_order: false,
                    },
                ),
                ("bad digest stream", Upload::Stream),
            ];
            for (name, how) in bad_cases {
                let big = Gen {
                    blob_size: r.chunk_min * 3 - 5,
                    ..small.clone()
                };
                let dig = set.gen_blob(&big);
                let mut bytes = set.blobs[&dig].clone();
                bytes.extend_from_slice(b"oh no");
                r.case(name, |r| {
                    r.upload(&repo, &dig, &bytes, how, Content::DoesNotMatch)?;
                    // Nothing of it may be stored.
                    let t = r.v2(&repo, &format!("blobs/{dig}"));
                    r.call(Request::new("HEAD", t), &[404]).map(|_| ())
                });
            }
        });
    }

    /// A 2048-byte blob read in ranges: 206 with `Content-Range` (total or
    /// `*`), clamped at its end; 416 for a backwards or past-the-end range.
    fn range_requests(&mut self, algo: Algo, repo: &str) {
        let mut set = DataSet::new("range");
        let dig = set.gen_blob(&Gen {
            algo,
            ..Gen::default()
        });
        let body = set.blobs[&dig].clone();
        let n = body.len();
        if let Err(e) = self.push_blob_any(repo, &dig, &body) {
            self.case("range requests", |_| Err(format!("setup: {e}")));
            return;
        }
        // (name, Range, Some(first, last) → 206, None → 416)
        let cases: [(&str, &str, Option<Span>); 6] = [
            ("range 500-1499", "bytes=500-1499", Some((500, 1499))),
            ("range 500-", "bytes=500-", Some((500, n - 1))),
            ("range -500", "bytes=-500", Some((n - 500, n - 1))),
            ("range 2000-5000", "bytes=2000-5000", Some((2000, n - 1))),
            ("range 500-0", "bytes=500-0", None),
            ("range 5000-10000", "bytes=5000-10000", None),
        ];
        self.group("range requests", |r| {
            for (name, range, want) in cases {
                r.case(name, |r| {
                    let t = r.v2(repo, &format!("blobs/{dig}"));
                    let resp = r.call(Request::new("GET", t).header("Range", range), &[206, 416, 200])?;
                    if resp.status == 200 {
                        return Err(format!("Range {range}: the whole blob (200), no range support"));
                    }
                    match want {
                        None if resp.status == 416 => Ok(()),
                        None => Err(format!("Range {range}: {}, expected 416", resp.describe())),
                        Some(_) if resp.status != 206 => {
                            Err(format!("Range {range}: {}, expected 206", resp.describe()))
                        }
                        Some((a, b)) => {
                            if resp.body != body[a..=b] {
                                return Err(format!(
                                    "Range {range}: {} bytes that are not bytes {a}-{b}",
                                    resp.body.len()
                                ));
                            }
                            expect_header(&resp, "content-length", &(b - a + 1).to_string(), range)?;
                            let cr = resp.header("content-range").unwrap_or_default();
                            if cr != format!("bytes {a}-{b}/{n}") && cr != format!("bytes {a}-{b}/*") {
                                return Err(format!(
                                    "Range {range}: Content-Range {cr:?}, expected bytes {a}-{b}/{n}"
                                ));
                            }
                            Ok(())
                        }
                    }
                });
            }
        });
        // Cleanup, as the suite: a failure here is the delete's.
        if let Err(e) = self.delete_blob(repo, &dig) {
            self.case("range requests cleanup", |_| Err(e));
        }
    }
}

/// The first and last byte of a range.
type Span = (usize, usize);
