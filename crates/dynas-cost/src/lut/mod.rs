//! Per-layer lookup tables (LUTs) as cost models.
//!
//! Three published formats load directly:
//!
//! * **Harmonic-NAS / OFA-MNIST** (`{key: {"lat": ms, "enrg": mJ}}`, values as numbers or
//!   strings), keyed like `MBConvLayer-input:1_16_14_14-in_ch:16-out_ch:24-mid_ch:48-expand:3-kernel:7-stride:2-use_se:0`
//!   ([`LayerLut::from_harmonic_file`], keys from a [`dynas_space::Layer`] by [`harmonic_key`]);
//! * **once-for-all / Dynamic-OFA** (`<R>_lookup_table.json` per input resolution `R`,
//!   `{key: {"count", "mean", "std"}}` in ms), keyed like
//!   `expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0`
//!   ([`LutModel::from_ofa_dir`], keys by [`ofa_key`]);
//! * **HW-NAS-Bench FBNet** (`{metric: {block key: value}}`), where a decoded network names
//!   every layer by its block key ([`FbNetLut`]).
//!
//! A layer whose key is missing is a [`crate::CostError::MissingKey`] naming the key, unless the
//! model has a fallback model for such layers.

mod fbnet;
mod keys;
mod memo;
mod model;
mod table;

pub use fbnet::{FbNetInput, FbNetLut, FbNetLutModel};
pub use keys::{KeyScheme, harmonic_key, ofa_key, parse_harmonic_key, parse_ofa_key};
pub use model::LutModel;
pub use table::{LayerLut, LutEntry};
