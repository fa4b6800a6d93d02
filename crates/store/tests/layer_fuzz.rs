//! Random hostile layers: entries of every kind with names and link
//! targets drawn from a small alphabet of `..`, `.`, whiteout prefixes,
//! the names beside the layer dir and absolute paths to them. Whatever
//! each layer does (most are refused), nothing outside the layer dir may
//! change. Deterministic: a fixed seed per case, printed on failure.
//!
//! The names are unusual (`bza`, ...) so that even a broken unpacker
//! escaping to the host root would only litter `/bza`; no case names a
//! real host path.
mod layer_support;

use layer_support::*;

/// xorshift64*: enough randomness for shuffling names, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const NAMES: &[&str] = &[
    "bza",
    "bzb",
    "bzc",
    "..",
    ".",
    "outside",
    "sentinel",
    "dir",
    "layer",
    ".wh.bza",
    ".wh.outside",
    ".wh..wh..opq",
    ".wh..",
];

fn path(rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    let comps: Vec<&str> = (0..n).map(|_| rng.pick(NAMES)).collect();
    let lead = if rng.below(4) == 0 { "/" } else { "" };
    format!("{lead}{}", comps.join("/"))
}

fn target(rng: &mut Rng, s: &Scene) -> String {
    match rng.below(6) {
        0 => s.abs(rng.pick(&["outside", "outside/sentinel", "outside/dir", "outside/link"])),
        1 => format!("{}/{}", s.abs("layer"), path(rng)),
        2 => format!("{}{}", "../".repeat(1 + rng.below(4)), path(rng)),
        _ => path(rng),
    }
}

/// An entry; half of them below an earlier entry's path, so that writes
/// through earlier symlinks are common.
fn entry(rng: &mut Rng, s: &Scene, earlier: &[E]) -> E {
    let p = if !earlier.is_empty() && rng.below(2) == 0 {
        let base = &earlier[rng.below(earlier.len())].path;
        format!("{}/{}", String::from_utf8_lossy(base), path(rng))
    } else {
        path(rng)
    };
    let mut e = match rng.below(7) {
        0 => dir(&p),
        1 | 2 => file(&p, b"pwned"),
        3 => symlink(&p, &target(rng, s)),
        4 => hardlink(&p, &target(rng, s)),
        5 => fifo(&p),
        _ => chardev(&p, 1, 3),
    };
    if rng.below(5) == 0 {
        e = e.xattr("user.bz", b"1").owner(4321, 4321).mode(0o7777);
    }
    if rng.below(8) == 0 {
        e = e.xattr("trusted.overlay.opaque", b"y");
    }
    e
}

#[test]
fn random_hostile_layers_stay_inside() {
    let mut applied = 0;
    let mut refused = 0;
    for case in 0..600u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (case + 1).wrapping_mul(0xff51_afd7_ed55_8ccd));
        let s = Scene::new();
        let n = 1 + rng.below(10);
        let mut entries: Vec<E> = Vec::new();
        for _ in 0..n {
            let e = entry(&mut rng, &s, &entries);
            entries.push(e);
        }
        let r = if rng.below(2) == 0 {
            s.unpack(&entries)
        } else {
            s.unpack_devices(&entries)
        };
        match r {
            Ok(_) => applied += 1,
            Err(_) => refused += 1,
        }
        let outside = std::panic::catch_unwind(|| s.assert_outside_untouched());
        if outside.is_err() {
            panic!("case {case} escaped: {entries:#?}");
        }
        for name in ["/bza", "/bzb", "/bzc", "/sentinel", "/outside"] {
            assert!(
                !std::path::Path::new(name).exists(),
                "case {case} wrote {name} on the host: {entries:#?}"
            );
        }
    }
    eprintln!("{applied} layers applied, {refused} refused");
    // The generator must produce both, or it tests little.
    assert!(
        applied > 40 && refused > 40,
        "{applied} applied, {refused} refused"
    );
}
