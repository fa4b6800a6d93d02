//! The blob uploads (api.go's Blob* calls): POST with the blob, POST then
//! PUT, chunked PATCHes (in order or not, the last chunk in the PUT or
//! not), a streamed PATCH, mounts; each ends checking `Docker-Content-Digest`
//! and that its `Location` gives the blob back.
use super::*;

impl Runner {
    pub(super) fn upload(
        &mut self,
        repo: &str,
        dig: &str,
        bytes: &[u8],
        how: Upload,
        content: Content,
    ) -> R {
        match how {
            Upload::PostOnly => self.post_only(repo, dig, bytes, content),
            Upload::PostPut => self.post_put(repo, dig, bytes, content),
            Upload::Chunked {
                put_last,
                out_of_order,
            } => self.chunked(repo, dig, bytes, put_last, out_of_order, content),
            Upload::Stream => self.stream(repo, dig, bytes, content),
        }
    }

    /// Any upload, the kinds taken in turn (the suite's TestPushBlobAny).
    pub(super) fn push_blob_any(&mut self, repo: &str, dig: &str, bytes: &[u8]) -> R {
        let kinds = [
            Upload::PostPut,
            Upload::PostOnly,
            Upload::Stream,
            Upload::Chunked {
                put_last: false,
                out_of_order: false,
            },
        ];
        let how = kinds[self.rotate % kinds.len()];
        self.rotate += 1;
        self.upload(repo, dig, bytes, how, Content::Matches)
            .map_err(|e| format!("upload of {dig} ({how:?}): {e}"))
    }

    /// POST a new upload session for a blob of `dig`'s algorithm (named
    /// with `digest-algorithm` when not sha256, as the spec asks; the
    /// suite leaves that to do).
    pub(super) fn start_upload(&self, repo: &str, dig: &str) -> Result<Response, String> {
        let mut t = self.v2(repo, "blobs/uploads/");
        let algo = dig.split(':').next().unwrap_or("sha256");
        if algo != "sha256" {
            t = with_param(&t, "digest-algorithm", algo);
        }
        self.call(Request::new("POST", t).body(Body::Sized(&[])), &[202])
    }

    /// `POST ?digest=` with the blob: 201, or 202 and a PUT (a fallback).
    fn post_only(&mut self, repo: &str, dig: &str, bytes: &[u8], content: Content) -> R {
        let bad = content == Content::DoesNotMatch;
        let t = with_param(&self.v2(repo, "blobs/uploads/"), "digest", dig);
        let (k, v) = octet();
        let want: &[u16] = if bad { &[400, 202] } else { &[201, 202] };
        let resp = self.call(
            Request::new("POST", t)
                .header(&k, &v)
                .body(Body::Sized(bytes)),
            want,
        )?;
        if resp.status == 400 {
            return self.check_error(&resp, &["DIGEST_INVALID"], "POST ?digest= of wrong content");
        }
        if resp.status == 202 {
            let loc = self.target_of(resp.header("location"), "POST ?digest= answered 202")?;
            let put = self.call(
                Request::new("PUT", with_param(&loc, "digest", dig))
                    .header(&k, &v)
                    .body(Body::Sized(bytes)),
                if bad { &[400] } else { &[201] },
            )?;
            if bad {
                return self.check_error(&put, &["DIGEST_INVALID"], "PUT of wrong content");
            }
            self.check_digest_header(&put, dig, "PUT after POST ?digest=")?;
            self.verify_location(&put, bytes, "PUT after POST ?digest=")?;
            if self.caps.monolithic_post {
                return Err("POST ?digest= with the blob answered 202 (a session), not 201: the blob was not stored by the POST".into());
            }
            self.note("POST ?digest= answered 202: completed with a PUT (allowed)".into());
            return Ok(());
        }
        self.check_digest_header(&resp, dig, "POST ?digest=")?;
        self.verify_location(&resp, bytes, "POST ?digest=")
    }

    /// POST, then PUT `?digest=` with the blob.
    fn post_put(&mut self, repo: &str, dig: &str, bytes: &[u8], content: Content) -> R {
        let bad = content == Content::DoesNotMatch;
        let post = self.start_upload(repo, dig)?;
        let loc = self.target_of(post.header("location"), "POST")?;
        let (k, v) = octet();
        let put = self.call(
            Request::new("PUT", with_param(&loc, "digest", dig))
                .header(&k, &v)
                .body(Body::Sized(bytes)),
            if bad { &[400] } else { &[201] },
        )?;
        if bad {
            return self.check_error(&put, &["DIGEST_INVALID"], "PUT of wrong content");
        }
        self.check_digest_header(&put, dig, "PUT")?;
        self.verify_location(&put, bytes, "PUT")
    }

    /// POST, PATCHes with `Content-Range` (in chunks of at least the
    /// registry's `OCI-Chunk-Min-Length`), PUT `?digest=` (with the last
    /// chunk, or empty); out of order: each chunk is first sent at the
    /// wrong offset (416), then the offset is asked for with a GET (204, `Range`).
    fn chunked(
        &mut self,
        repo: &str,
        dig: &str,
        bytes: &[u8],
        put_last: bool,
        out_of_order: bool,
        content: Content,
    ) -> R {
        let bad = content == Content::DoesNotMatch;
        let post = self.start_upload(repo, dig)?;
        let mut loc = self.target_of(post.header("location"), "POST")?;
        let mut chunk = bytes.len() / 3 + 1;
        if let Some(m) = post.header("oci-chunk-min-length") {
            let m: usize = m
                .parse()
                .map_err(|_| format!("OCI-Chunk-Min-Length {m:?} is not a number"))?;
            chunk = chunk.max(m);
            self.chunk_min = self.chunk_min.max(m);
        }
        chunk = chunk.max(CHUNK_MIN).min(bytes.len());
        let len = bytes.len();
        let (k, v) = octet();
        let mut last: isize = -1;
        let mut final_resp = None;
        while last < len as isize - 1 {
            if out_of_order {
                let mut bad_start = (last + 1) as usize + chunk;
                if bad_start >= len {
                    bad_start = 0;
                }
                let bad_end = (bad_start + chunk - 1).min(len - 1);
                let method = if put_last && bad_end == len - 1 {
                    "PUT"
                } else {
                    "PATCH"
                };
                let t = if method == "PUT" {
                    with_param(&loc, "digest", dig)
                } else {
                    loc.clone()
                };
                let r = self.call(
                    Request::new(method, t)
                        .header(&k, &v)
                        .header("Content-Range", &format!("{bad_start}-{bad_end}"))
                        .body(Body::Sized(&bytes[bad_start..=bad_end])),
                    &[416],
                )?;
                if let Some(l) = r.header("location") {
                    loc = self.target_of(Some(l), "416")?;
                }
                let st = self.call(Request::new("GET", loc.clone()), &[204])?;
                loc = self.target_of(st.header("location"), "GET of the upload")?;
                let range = st
                    .header("range")
                    .ok_or("GET of the upload after a 416: no Range header")?;
                let end = range
                    .strip_prefix("0-")
                    .and_then(|e| e.parse::<isize>().ok())
                    .ok_or_else(|| format!("GET of the upload: Range {range:?} is not 0-<end>"))?;
                if last >= 0 && end != last {
                    return Err(format!(
                        "GET of the upload after a 416: Range 0-{end}, expected 0-{last}"
                    ));
                }
            }
            let start = (last + 1) as usize;
            let end = (start + chunk - 1).min(len - 1);
            last = end as isize;
            if put_last && end == len - 1 {
                let r = self.call(
                    Request::new("PUT", with_param(&loc, "digest", dig))
                        .header(&k, &v)
                        .header("Content-Range", &format!("{start}-{end}"))
                        .body(Body::Sized(&bytes[start..=end])),
                    if bad { &[400] } else { &[201] },
                )?;
                final_resp = Some(r);
            } else {
                let r = self.call(
                    Request::new("PATCH", loc.clone())
                        .header(&k, &v)
                        .header("Content-Range", &format!("{start}-{end}"))
                        .body(Body::Sized(&bytes[start..=end])),
                    &[202],
                )?;
                match r.header("range") {
                    Some(rg) if rg == format!("0-{end}") => {}
                    other => {
                        return Err(format!(
                            "PATCH {start}-{end}: 202 with Range {other:?}, the spec says 0-{end}"
                        ))
                    }
                }
                loc = self.target_of(r.header("location"), "PATCH")?;
            }
        }
        let put = match final_resp {
            Some(r) => r,
            None => self.call(
                Request::new("PUT", with_param(&loc, "digest", dig))
                    .header(&k, &v)
                    .body(Body::Sized(&[])),
                if bad { &[400] } else { &[201] },
            )?,
        };
        if bad {
            return self.check_error(&put, &["DIGEST_INVALID"], "closing PUT of wrong content");
        }
        self.check_digest_header(&put, dig, "closing PUT")?;
        self.verify_location(&put, bytes, "closing PUT")
    }

    /// POST, one PATCH without `Content-Range` (a chunked request body),
    /// an empty PUT `?digest=`.
    fn stream(&mut self, repo: &str, dig: &str, bytes: &[u8], content: Content) -> R {
        let bad = content == Content::DoesNotMatch;
        let post = self.start_upload(repo, dig)?;
        let loc = self.target_of(post.header("location"), "POST")?;
        let (k, v) = octet();
        let patch = self.call(
            Request::new("PATCH", loc)
                .header(&k, &v)
                .body(Body::Chunked(bytes)),
            &[202],
        )?;
        let loc = self.target_of(patch.header("location"), "PATCH")?;
        let put = self.call(
            Request::new("PUT", with_param(&loc, "digest", dig))
                .header(&k, &v)
                .body(Body::Sized(&[])),
            if bad { &[400] } else { &[201] },
        )?;
        if bad {
            return self.check_error(&put, &["DIGEST_INVALID"], "PUT of wrong content");
        }
        self.check_digest_header(&put, dig, "PUT")?;
        self.verify_location(&put, bytes, "PUT")
    }

    /// `POST ?mount=&from=`: 201 when mounted, 202 (a session, finished
    /// with a PUT) when not; returns the status of the POST.
    pub(super) fn mount(
        &mut self,
        repo: &str,
        from: Option<&str>,
        dig: &str,
        bytes: &[u8],
    ) -> Result<u16, String> {
        let mut t = with_param(&self.v2(repo, "blobs/uploads/"), "mount", dig);
        if let Some(f) = from {
            t = with_param(&t, "from", f);
        }
        let resp = self.call(Request::new("POST", t).body(Body::Sized(&[])), &[201, 202])?;
        if resp.status == 201 {
            self.check_digest_header(&resp, dig, "mount")?;
            self.verify_location(&resp, bytes, "mount")?;
            return Ok(201);
        }
        let loc = self.target_of(resp.header("location"), "mount answered 202")?;
        let (k, v) = octet();
        let put = self.call(
            Request::new("PUT", with_param(&loc, "digest", dig))
                .header(&k, &v)
                .body(Body::Sized(bytes)),
            &[201],
        )?;
        self.check_digest_header(&put, dig, "PUT after a mount's 202")?;
        self.verify_location(&put, bytes, "PUT after a mount's 202")?;
        Ok(202)
    }
}
