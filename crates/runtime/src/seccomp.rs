//! Seccomp for containers: Docker-format profiles (the default one is our
//! data file `profiles/default.json`, the same policy as Docker's default)
//! are turned into OCI `LinuxSeccomp` for a given capability set and host
//! architecture, then compiled to classic BPF with libseccomp **once per
//! distinct filter** and cached on disk: compiling costs milliseconds,
//! reading the cached program a few microseconds (DESIGN.md).
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::OnceLock;

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// berth's default profile (Docker's default policy), in Docker's format.
pub const DOCKER_DEFAULT_PROFILE: &str = include_str!("../profiles/default.json");

/// Bump when the compiled form or the cache key changes.
const CACHE_FORMAT: &str = "berth-bpf-1";

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile is not valid Docker-format JSON.
    #[error("invalid seccomp profile: {0}")]
    Profile(String),
    /// libseccomp refused the filter.
    #[error("compiling the seccomp filter: {0}")]
    Compile(String),
    /// Reading or writing the BPF cache failed.
    #[error("seccomp cache {path}: {source}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

/// The host architecture in Go's spelling (as profiles' `arches` use it)
/// and libseccomp's.
fn host_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        other => (other, "SCMP_ARCH_NATIVE"),
    }
}

fn kernel_at_least(min: &str) -> bool {
    let parse = |s: &str| -> (u32, u32) {
        let mut it = s.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse(release.trim()) >= parse(min)
}

fn cap_bit(name: &str) -> Option<u8> {
    match model::capability::parse(name) {
        Ok(model::capability::CapArg::One(b)) => Some(b),
        _ => None,
    }
}

/// Does a rule apply to this capability set and architecture (Docker's
/// includes/excludes semantics: includes need every listed cap and one of
/// the arches; excludes drop the rule if any listed cap is held or the
/// arch is listed)?
fn applies(rule: &Rule, caps: u64, go_arch: &str) -> bool {
    let has = |c: &String| cap_bit(c).is_some_and(|b| caps & (1u64 << b) != 0);
    if !rule.includes.caps.iter().all(has) {
        return false;
    }
    if !rule.includes.arches.is_empty() && !rule.includes.arches.iter().any(|a| a == go_arch) {
        return false;
    }
    if let Some(min) = &rule.includes.min_kernel {
        if !kernel_at_least(min) {
            return false;
        }
    }
    if rule.excludes.caps.iter().any(has) {
        return false;
    }
    if rule.excludes.arches.iter().any(|a| a == go_arch) {
        return false;
    }
    true
}

fn parse_profile(json: &[u8]) -> Result<Profile, SeccompError> {
    serde_json::from_slice(json).map_err(|e| SeccompError::Profile(e.to_string()))
}

fn to_oci(p: &Profile, caps: u64) -> Result<LinuxSeccomp, SeccompError> {
    let (go_arch, scmp_arch) = host_arch();
    let mut arches: Vec<String> = Vec::new();
    if let Some(m) = p.arch_map.iter().find(|m| m.architecture == scmp_arch) {
        arches.push(m.architecture.clone());
        arches.extend(m.sub_architectures.clone().unwrap_or_default());
    } else {
        arches.extend(p.architectures.iter().cloned());
    }
    let mut syscalls = Vec::new();
    for r in p.syscalls.iter().filter(|r| applies(r, caps, go_arch)) {
        let mut names = r.names.clone();
        if let Some(n) = &r.name {
            names.push(n.clone());
        }
        if names.is_empty() {
            continue;
        }
        let mut s = json!({"names": names, "action": r.action});
        if let Some(e) = r.errno_ret {
            s["errnoRet"] = json!(e);
        }
        if let Some(a) = &r.args {
            s["args"] = json!(a);
        }
        syscalls.push(s);
    }
    let mut v =
        json!({"defaultAction": p.default_action, "architectures": arches, "syscalls": syscalls});
    if let Some(e) = p.default_errno_ret {
        v["defaultErrnoRet"] = json!(e);
    }
    serde_json::from_value(v).map_err(|e| SeccompError::Profile(e.to_string()))
}

/// A Docker-format profile as OCI seccomp for a container holding `caps`.
pub fn oci_from_docker_profile(
    profile_json: &[u8],
    effective_caps: u64,
) -> Result<LinuxSeccomp, SeccompError> {
    to_oci(&parse_profile(profile_json)?, effective_caps)
}

/// The default profile as OCI seccomp for `caps` (parsed once per process,
/// converted once per capability set).
pub fn docker_default_oci(effective_caps: u64) -> Result<LinuxSeccomp, SeccompError> {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    static CONVERTED: OnceLock<std::sync::Mutex<HashMap<u64, LinuxSeccomp>>> = OnceLock::new();
    let cache = CONVERTED.get_or_init(Default::default);
    if let Some(s) = cache
        .lock()
        .ok()
        .and_then(|m| m.get(&effective_caps).cloned())
    {
        return Ok(s);
    }
    let p = match PROFILE.get() {
        Some(p) => p,
        None => {
            let parsed = parse_profile(DOCKER_DEFAULT_PROFILE.as_bytes())?;
            PROFILE.get_or_init(|| parsed)
        }
    };
    let s = to_oci(p, effective_caps)?;
    if let Ok(mut m) = cache.lock() {
        m.insert(effective_caps, s.clone());
    }
    Ok(s)
}

fn action(
    name: &str,
    errno: Option<u32>,
    default_errno: Option<u32>,
) -> Result<libseccomp::ScmpAction, SeccompError> {
    use libseccomp::ScmpAction as A;
    Ok(match name {
        "SCMP_ACT_ALLOW" => A::Allow,
        "SCMP_ACT_ERRNO" => A::Errno(errno.or(default_errno).unwrap_or(libc::EPERM as u32) as i32),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => A::KillThread,
        "SCMP_ACT_KILL_PROCESS" => A::KillProcess,
        "SCMP_ACT_TRAP" => A::Trap,
        "SCMP_ACT_LOG" => A::Log,
        "SCMP_ACT_TRACE" => A::Trace(errno.unwrap_or(0) as u16),
        other => {
            return Err(SeccompError::Compile(format!(
                "unsupported seccomp action {other}"
            )))
        }
    })
}

fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Compile OCI seccomp to a BPF program (`struct sock_filter` bytes).
/// Unknown syscall names are skipped (as runc does); the filter does not
/// set no_new_privs itself.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Vec<u8>, SeccompError> {
    use libseccomp::{ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
    let err = |e: libseccomp::error::SeccompError| SeccompError::Compile(e.to_string());
    let default_errno = seccomp.default_errno_ret();
    let default = action(&serde_name(&seccomp.default_action()), default_errno, None)?;
    let mut ctx = ScmpFilterContext::new(default).map_err(err)?;
    ctx.set_ctl_nnp(false).map_err(err)?;
    for a in seccomp.architectures().as_deref().unwrap_or_default() {
        let name = serde_name(a);
        let arch: ScmpArch = name.parse().map_err(err)?;
        if arch != ScmpArch::native() {
            ctx.add_arch(arch).map_err(err)?;
        }
    }
    for rule in seccomp.syscalls().as_deref().unwrap_or_default() {
        let act = action(&serde_name(&rule.action()), rule.errno_ret(), default_errno)?;
        if act == default {
            continue;
        }
        let mut conds = Vec::new();
        for a in rule.args().as_deref().unwrap_or_default() {
            let op = match serde_name(&a.op()).as_str() {
                "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
                "SCMP_CMP_LT" => ScmpCompareOp::Less,
                "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
                "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
                "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
                "SCMP_CMP_GT" => ScmpCompareOp::Greater,
                "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value()),
                other => {
                    return Err(SeccompError::Compile(format!(
                        "unsupported operator {other}"
                    )))
                }
            };
            let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
                a.value_two().unwrap_or(0)
            } else {
                a.value()
            };
            conds.push(ScmpArgCompare::new(a.index() as u32, op, datum));
        }
        for name in rule.names() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let r = if conds.is_empty() {
                ctx.add_rule(act, sys)
            } else {
                ctx.add_rule_conditional(act, sys, &conds)
            };
            r.map_err(err)?;
        }
    }
    let mut file = tempfile::tempfile().map_err(|e| SeccompError::Compile(e.to_string()))?;
    ctx.export_bpf(&file).map_err(err)?;
    let mut out = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut out))
        .map_err(|e| SeccompError::Compile(e.to_string()))?;
    Ok(out)
}

/// Compiled filters on disk, keyed by the hash of the OCI seccomp JSON.
pub struct BpfCache {
    dir: PathBuf,
}

impl BpfCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        BpfCache { dir }
    }

    fn key(seccomp: &LinuxSeccomp) -> String {
        let mut h = Sha256::new();
        h.update(CACHE_FORMAT.as_bytes());
        h.update(std::env::consts::ARCH.as_bytes());
        h.update(serde_json::to_vec(seccomp).unwrap_or_default());
        hex::encode(h.finalize())
    }

    /// The BPF for `seccomp`, compiled now only if not cached.
    pub fn get_or_compile(&self, seccomp: &LinuxSeccomp) -> Result<Vec<u8>, SeccompError> {
        let path = self.dir.join(format!("{}.bpf", Self::key(seccomp)));
        if let Ok(b) = std::fs::read(&path) {
            if !b.is_empty() && b.len().is_multiple_of(8) {
                return Ok(b);
            }
        }
        let bpf = compile(seccomp)?;
        let cache_err = |source| SeccompError::Cache {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(cache_err)?;
        let tmp = self.dir.join(format!(".{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bpf).map_err(cache_err)?;
        std::fs::rename(&tmp, &path).map_err(cache_err)?;
        Ok(bpf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn default_profile_follows_capabilities() {
        let default = model::capability::docker_default_mask();
        let s = docker_default_oci(default).unwrap();
        let n = names(&s);
        assert!(n.contains(&"read".to_string()));
        assert!(
            !n.contains(&"mount".to_string()),
            "mount needs CAP_SYS_ADMIN"
        );
        assert!(
            n.contains(&"chroot".to_string()),
            "CAP_SYS_CHROOT is a default cap"
        );
        assert!(!n.contains(&"ptrace".to_string()) || kernel_at_least("4.8"));
        let admin = default | (1 << 21);
        let n = names(&docker_default_oci(admin).unwrap());
        assert!(n.contains(&"mount".to_string()));
        assert_eq!(s.default_errno_ret(), Some(1));
    }

    #[test]
    fn compiles_and_caches() {
        let s = docker_default_oci(model::capability::docker_default_mask()).unwrap();
        let bpf = compile(&s).unwrap();
        assert!(!bpf.is_empty() && bpf.len().is_multiple_of(8));
        let dir = tempfile::tempdir().unwrap();
        let cache = BpfCache::new(dir.path().to_path_buf());
        assert_eq!(cache.get_or_compile(&s).unwrap(), bpf);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(cache.get_or_compile(&s).unwrap(), bpf);
    }

    #[test]
    fn rejects_bad_profiles() {
        assert!(oci_from_docker_profile(b"{not json", 0).is_err());
        assert!(oci_from_docker_profile(br#"{"syscalls": []}"#, 0).is_err());
    }
}
