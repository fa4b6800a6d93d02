//! `key generate`, `sign`, `verify`, `attest`, `verify-attestation`:
//! cosign's key-based commands, with its flags and output.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use engine::signing::{self, VerifiedAttestation};
use engine::Engine;
use model::Reference;

use crate::Failure;

/// `key` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Make an ECDSA P-256 key pair as cosign does: NAME.key (encrypted with
    /// BERTH_PASSWORD or COSIGN_PASSWORD, empty allowed) and NAME.pub.
    Generate(GenerateArgs),
}

/// `key generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Write NAME.key and NAME.pub.
    #[arg(long, value_name = "NAME", default_value = "cosign")]
    output_key_prefix: PathBuf,
}

/// `sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The private key (NAME.key of `berth key generate` or `cosign generate-key-pair`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Extra key=value annotations in the signed claim (repeatable).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    /// Accepted for cosign's command lines; berth never asks.
    #[arg(short = 'y', long = "yes", hide = true)]
    _yes: bool,
    /// The image in its registry.
    image: String,
}

/// `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The public key (NAME.pub).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Require these key=value annotations in the claim (repeatable).
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    /// The image in its registry.
    image: String,
}

/// `attest`.
#[derive(Args, Debug)]
pub struct AttestArgs {
    /// The private key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The predicate (a JSON document; any text for --type custom).
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, link, vuln,
    /// openvex, custom or a URI.
    #[arg(long = "type", default_value = "custom")]
    predicate_type: String,
    /// Accepted for cosign's command lines; berth never asks.
    #[arg(short = 'y', long = "yes", hide = true)]
    _yes: bool,
    /// The image in its registry.
    image: String,
}

/// `verify-attestation`.
#[derive(Args, Debug)]
pub struct VerifyAttestationArgs {
    /// The public key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Only attestations of this predicate type (a --type name or a URI).
    #[arg(long = "type")]
    predicate_type: Option<String>,
    /// The image in its registry.
    image: String,
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

fn reference(image: &str) -> Result<Reference, Failure> {
    image
        .parse()
        .map_err(|e| Failure::usage(format!("invalid reference {image:?}: {e}")))
}

/// The key's password: BERTH_PASSWORD, else COSIGN_PASSWORD (either may
/// be empty), else asked on the terminal (twice when `confirm`), as
/// cosign does.
fn password(confirm: bool) -> Result<Vec<u8>, Failure> {
    for var in ["BERTH_PASSWORD", "COSIGN_PASSWORD"] {
        if let Some(v) = std::env::var_os(var) {
            return Ok(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec());
        }
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::msg(
            125,
            "the key's password is needed: set BERTH_PASSWORD (or COSIGN_PASSWORD; empty is allowed), or run on a terminal to be asked",
        ));
    }
    let first = crate::terminal::read_secret("Enter password for private key: ")
        .map_err(|e| Failure::msg(125, format!("reading the password: {e}")))?;
    if confirm {
        let again = crate::terminal::read_secret("Enter password for private key again: ")
            .map_err(|e| Failure::msg(125, format!("reading the password: {e}")))?;
        if again != first {
            return Err(Failure::msg(125, "the passwords do not match"));
        }
    }
    Ok(first.into_bytes())
}

/// `key generate`: needs no engine.
pub fn key(c: KeyCommand) -> Result<(), Failure> {
    match c {
        KeyCommand::Generate(a) => {
            let pw = password(true)?;
            let (k, p) = signing::generate_key_pair(&a.output_key_prefix, &pw)?;
            eprintln!(
                "Private key written to {}\nPublic key written to {}",
                k.display(),
                p.display()
            );
            Ok(())
        }
    }
}

/// `sign --key NAME.key IMAGE`.
pub fn sign(engine: &Engine, a: SignArgs) -> Result<(), Failure> {
    let r = reference(&a.image)?;
    let key = signing::load_private_key(&a.key, &password(false)?)?;
    let annotations: BTreeMap<String, String> = a.annotations.into_iter().collect();
    let out = engine.sign_image(&r, &key, &annotations)?;
    eprintln!("Pushing signature to: {}", out.tag);
    eprintln!("Pushing referrer: {}@{}", r.name(), out.referrer);
    Ok(())
}

/// `verify --key NAME.pub IMAGE`: the verified claims on stdout (a JSON
/// array, as cosign), the checks made on stderr.
pub fn verify(engine: &Engine, a: VerifyArgs) -> Result<(), Failure> {
    let r = reference(&a.image)?;
    let key = signing::load_public_key(&a.key)?;
    let annotations: BTreeMap<String, String> = a.annotations.into_iter().collect();
    let v = engine.verify_image(&r, &key, &annotations)?;
    eprintln!("\nVerification for {r} --");
    eprintln!("The following checks were performed on each of these signatures:");
    eprintln!("  - The cosign claims were validated");
    eprintln!("  - The signatures were verified against the specified public key");
    eprintln!("  - The claims name the image's digest {}", v.digest);
    eprintln!("  - No transparency log was consulted (key-based, offline)");
    let payloads: Vec<serde_json::Value> = v
        .signatures
        .iter()
        .filter_map(|s| serde_json::from_slice(&s.payload).ok())
        .collect();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &payloads)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| Failure::msg(125, format!("writing the output: {e}")))
}

/// `attest --key NAME.key --predicate FILE --type T IMAGE`.
pub fn attest(engine: &Engine, a: AttestArgs) -> Result<(), Failure> {
    let r = reference(&a.image)?;
    let predicate = std::fs::read(&a.predicate).map_err(|e| {
        Failure::usage(format!(
            "cannot read --predicate {}: {e}",
            a.predicate.display()
        ))
    })?;
    let key = signing::load_private_key(&a.key, &password(false)?)?;
    let out = engine.attest_image(&r, &key, &a.predicate_type, &predicate)?;
    eprintln!("Pushing attestation to: {}", out.tag);
    Ok(())
}

/// `verify-attestation --key NAME.pub IMAGE`: each verified envelope on a
/// line of stdout, as cosign.
pub fn verify_attestation(engine: &Engine, a: VerifyAttestationArgs) -> Result<(), Failure> {
    let r = reference(&a.image)?;
    let key = signing::load_public_key(&a.key)?;
    let found = engine.verify_attestations(&r, &key, a.predicate_type.as_deref())?;
    eprintln!("\nVerification for {r} --");
    eprintln!("The following checks were performed on each of these signatures:");
    eprintln!("  - The cosign claims were validated");
    eprintln!("  - The signatures were verified against the specified public key");
    eprintln!("  - The statements name the image's digest");
    let mut out = std::io::stdout().lock();
    for VerifiedAttestation { envelope, .. } in &found {
        serde_json::to_writer(&mut out, envelope)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .map_err(|e| Failure::msg(125, format!("writing the output: {e}")))?;
    }
    Ok(())
}
