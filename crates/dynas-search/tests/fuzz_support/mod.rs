//! Byte-mutation fuzzing on the stable toolchain: proptest draws a short list of edits (bit
//! flips, byte changes, insertions of tokens that parsers find hard, deletions, truncations,
//! duplicated chunks, numbers replaced by extreme ones) and applies them to a seed taken from
//! a real data file. Each fuzz target parses the mutated bytes and must return `Ok` or a typed
//! error, never panic or hang.
//!
//! The case count is `DYNAS_FUZZ_CASES` (default [`DEFAULT_CASES`], small enough for CI);
//! run e.g. `DYNAS_FUZZ_CASES=100000 cargo test --release --test fuzz` for a long run.
//! Shared by the fuzz tests of several crates through `#[path]`.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per target when `DYNAS_FUZZ_CASES` is not set.
pub const DEFAULT_CASES: u32 = 48;

/// The proptest configuration of a fuzz target: `DYNAS_FUZZ_CASES` cases, no regression
/// files written next to the sources, shrinking bounded.
pub fn config() -> Config {
    let cases = std::env::var("DYNAS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

/// Text that parsers of numbers, CSV and JSON handle specially.
pub const TOKENS: &[&str] = &[
    "",
    "-1",
    "0",
    "-0",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e300",
    "-1e300",
    "1e-320",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "4294967296",
    "9007199254740993",
    "\"",
    ",",
    ",,",
    "\n",
    "\r\n",
    "{",
    "}",
    "[",
    "]",
    ":",
    "null",
    "true",
    "\u{0}",
    "\u{fffd}",
    "é",
    " ",
    "\t",
    "|",
    "~",
    "+",
    "-",
    "=",
];

/// One edit of a byte string; positions are taken modulo the current length.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Flip one bit.
    FlipBit(usize, u8),
    /// Set one byte.
    SetByte(usize, u8),
    /// Insert one of [`TOKENS`].
    InsertToken(usize, usize),
    /// Insert random bytes.
    InsertBytes(usize, Vec<u8>),
    /// Delete up to this many bytes.
    Delete(usize, usize),
    /// Cut everything from here.
    Truncate(usize),
    /// Copy a chunk (start, length) to another place.
    Duplicate(usize, usize, usize),
    /// Replace the n-th run of digits by one of [`TOKENS`].
    ReplaceNumber(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 0u8..8).prop_map(|(p, b)| Edit::FlipBit(p, b)),
        (pos, any::<u8>()).prop_map(|(p, b)| Edit::SetByte(p, b)),
        (pos, 0..TOKENS.len()).prop_map(|(p, t)| Edit::InsertToken(p, t)),
        (pos, prop::collection::vec(any::<u8>(), 1..12)).prop_map(|(p, b)| Edit::InsertBytes(p, b)),
        (pos, 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        pos.prop_map(Edit::Truncate),
        (pos, 1usize..256, pos).prop_map(|(a, n, b)| Edit::Duplicate(a, n, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(n, t)| Edit::ReplaceNumber(n, t)),
    ]
}

/// One to eight edits.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..8)
}

/// `seed` with `edits` applied in order.
pub fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let len = b.len();
        let at = |p: usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            Edit::FlipBit(p, bit) if len > 0 => b[p % len] ^= 1 << bit,
            Edit::SetByte(p, v) if len > 0 => b[p % len] = *v,
            Edit::InsertToken(p, t) => {
                let i = at(*p);
                b.splice(i..i, TOKENS[*t].bytes());
            }
            Edit::InsertBytes(p, bytes) => {
                let i = at(*p);
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(p, n) if len > 0 => {
                let i = p % len;
                let end = (i + n).min(len);
                b.drain(i..end);
            }
            Edit::Truncate(p) => b.truncate(at(*p)),
            Edit::Duplicate(a, n, to) if len > 0 => {
                let start = a % len;
                let chunk: Vec<u8> = b[start..(start + n).min(len)].to_vec();
                let i = at(*to);
                b.splice(i..i, chunk);
            }
            Edit::ReplaceNumber(n, t) => {
                let runs = digit_runs(&b);
                if !runs.is_empty() {
                    let (s, e) = runs[n % runs.len()];
                    b.splice(s..e, TOKENS[*t].bytes());
                }
            }
            _ => {}
        }
    }
    b
}

fn digit_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// The first `lines` lines of a text file (a small seed from a large real file).
pub fn head(path: &str, lines: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("seed `{path}`: {e}"));
    let mut out: String = text.lines().take(lines).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out.into_bytes()
}

/// Writes `bytes` to a fresh file named `name` in a new temporary directory.
pub fn scratch_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the case");
    (dir, path)
}

#[test]
fn mutations_change_the_seed_and_stay_in_bounds() {
    let seed = b"a,b\n1,2.5\n";
    let all = [
        Edit::FlipBit(3, 0),
        Edit::SetByte(100, b'x'),
        Edit::InsertToken(2, 8),
        Edit::InsertBytes(999, vec![0, 1]),
        Edit::Delete(1, 1000),
        Edit::Truncate(5),
        Edit::Duplicate(0, 300, 1),
        Edit::ReplaceNumber(1, 9),
    ];
    for e in &all {
        assert_ne!(
            mutate(seed, std::slice::from_ref(e)),
            seed.to_vec(),
            "{e:?}"
        );
    }
    assert_eq!(
        mutate(seed, &[Edit::ReplaceNumber(1, 8)]),
        b"a,b\n1,1e300\n".to_vec()
    );
    assert!(mutate(b"", &all).len() < 64);
}
