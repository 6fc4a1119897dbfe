//! The memo of [`super::LutModel`]: entries by layer structure, so that keys are formatted
//! once per distinct layer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use dynas_space::{Activation, Layer, OpKind, TensorShape};

use super::LutEntry;

/// A multiply-rotate hasher (the FxHash recipe) for the small integer keys of the memo:
/// several times faster than SipHash, and the keys are not attacker-controlled.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
}

/// Entry (or known absence) of each layer structure seen.
pub(crate) type Memo = HashMap<LayerSig, Option<LutEntry>, BuildHasherDefault<FastHasher>>;

/// Entries memoised by a [`super::LutModel`] before it stops adding more.
pub(crate) const MEMO_CAPACITY: usize = 1 << 16;

/// Everything a key is built from, hashable without formatting; `table` tells per-resolution
/// tables apart (they share the memo).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LayerSig {
    kind: OpKind,
    input: TensorShape,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    mid_channels: usize,
    se: Option<usize>,
    batch_norm: bool,
    activation: Activation,
    first: bool,
    table: usize,
}

impl LayerSig {
    pub(crate) fn of(l: &Layer, first: bool, table: usize) -> Self {
        Self {
            kind: l.kind,
            input: l.input,
            out_channels: l.out_channels,
            kernel: l.kernel,
            stride: l.stride,
            groups: l.groups,
            mid_channels: l.mid_channels,
            se: l.se_channels,
            batch_norm: l.batch_norm,
            activation: l.activation,
            first,
            table,
        }
    }
}
