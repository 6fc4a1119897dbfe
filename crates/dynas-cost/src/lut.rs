//! Per-layer lookup tables (LUTs) as cost models.
//!
//! Three published formats load directly:
//!
//! * **Harmonic-NAS / OFA-MNIST** (`{key: {"lat": ms, "enrg": mJ}}`, values as numbers or
//!   strings), keyed like `MBConvLayer-input:1_16_14_14-in_ch:16-out_ch:24-mid_ch:48-expand:3-kernel:7-stride:2-use_se:0`
//!   ([`LayerLut::from_harmonic_file`], keys from a [`Layer`] by [`harmonic_key`]);
//! * **once-for-all / Dynamic-OFA** (`<R>_lookup_table.json` per input resolution `R`,
//!   `{key: {"count", "mean", "std"}}` in ms), keyed like
//!   `expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0`
//!   ([`LutModel::from_ofa_dir`], keys by [`ofa_key`]);
//! * **HW-NAS-Bench FBNet** (`{metric: {block key: value}}`), where a decoded network names
//!   every layer by its block key ([`FbNetLut`]).
//!
//! A layer whose key is missing is a [`CostError::MissingKey`] naming the key, unless the
//! model has a fallback model for such layers.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::{Arc, RwLock};

use dynas_space::{Activation, Layer, Network, OpKind, TensorShape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::model::{Cost, CostBreakdown, CostModel};

/// One LUT entry.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LutEntry {
    /// Latency, ms.
    pub latency_ms: f64,
    /// Energy, mJ, if measured.
    pub energy_mj: Option<f64>,
    /// Standard deviation of the latency over the measured runs, ms, if known.
    pub std_ms: Option<f64>,
    /// Number of measured runs, if known.
    pub count: Option<u64>,
}

impl LutEntry {
    /// An entry with latency (and optionally energy) only.
    pub const fn new(latency_ms: f64, energy_mj: Option<f64>) -> Self {
        Self {
            latency_ms,
            energy_mj,
            std_ms: None,
            count: None,
        }
    }

    fn cost(&self) -> Cost {
        Cost {
            latency_ms: self.latency_ms,
            energy_mj: self.energy_mj,
            peak_memory_bytes: None,
        }
    }
}

/// A table from layer key to [`LutEntry`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerLut {
    /// Name of the table (its file, usually), used in errors.
    pub name: String,
    entries: HashMap<String, LutEntry>,
}

/// A number that the source may write as a JSON number or as a string.
fn json_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

impl LayerLut {
    /// An empty table called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            entries: HashMap::new(),
        }
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, key: impl Into<String>, entry: LutEntry) {
        self.entries.insert(key.into(), entry);
    }

    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&LutEntry> {
        self.entries.get(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys in sorted order.
    pub fn keys(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Loads a Harmonic-NAS style table (`{key: {"lat": .., "enrg": ..}}`).
    pub fn from_harmonic_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CostError::io(path, e))?;
        Self::from_harmonic_str(&text, path)
    }

    /// Parses a Harmonic-NAS style table; `origin` names the source in errors.
    pub fn from_harmonic_str(text: &str, origin: &Path) -> Result<Self> {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| CostError::parse(origin, e.to_string()))?;
        let mut lut = Self::new(origin.display().to_string());
        for (key, v) in map {
            let lat = v.get("lat").and_then(json_number).ok_or_else(|| {
                CostError::parse(
                    origin,
                    format!("key `{key}`: field `lat` missing or not a number"),
                )
            })?;
            let enrg = match v.get("enrg") {
                None => None,
                Some(e) => Some(json_number(e).ok_or_else(|| {
                    CostError::parse(origin, format!("key `{key}`: field `enrg` is not a number"))
                })?),
            };
            lut.insert(key, LutEntry::new(lat, enrg));
        }
        Ok(lut)
    }

    /// Loads a once-for-all / Dynamic-OFA table (`{key: {"count", "mean", "std"}}`).
    pub fn from_ofa_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CostError::io(path, e))?;
        Self::from_ofa_str(&text, path)
    }

    /// Parses a once-for-all table; `origin` names the source in errors.
    pub fn from_ofa_str(text: &str, origin: &Path) -> Result<Self> {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| CostError::parse(origin, e.to_string()))?;
        let mut lut = Self::new(origin.display().to_string());
        for (key, v) in map {
            let field = |name: &str| -> Result<Option<f64>> {
                match v.get(name) {
                    None => Ok(None),
                    Some(x) => json_number(x).map(Some).ok_or_else(|| {
                        CostError::parse(
                            origin,
                            format!("key `{key}`: field `{name}` is not a number"),
                        )
                    }),
                }
            };
            let mean = field("mean")?.ok_or_else(|| {
                CostError::parse(origin, format!("key `{key}`: field `mean` missing"))
            })?;
            let entry = LutEntry {
                latency_ms: mean,
                energy_mj: None,
                std_ms: field("std")?,
                count: field("count")?.map(|c| c.max(0.0) as u64),
            };
            lut.insert(key, entry);
        }
        Ok(lut)
    }

    /// The table in the Harmonic-NAS JSON format (keys sorted; numbers as numbers).
    pub fn to_harmonic_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for key in self.keys() {
            if let Some(e) = self.entries.get(key) {
                let mut v = serde_json::Map::new();
                v.insert("lat".into(), serde_json::json!(e.latency_ms));
                if let Some(en) = e.energy_mj {
                    v.insert("enrg".into(), serde_json::json!(en));
                }
                map.insert(key.to_string(), serde_json::Value::Object(v));
            }
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default()
    }

    /// Writes [`LayerLut::to_harmonic_json`] to `path`.
    pub fn save_harmonic(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_harmonic_json()).map_err(|e| CostError::io(path, e))
    }
}

/// The Harmonic-NAS / OFA-MNIST key of a layer (`None` for kinds that format has no key for:
/// pooling, residual blocks, identities, zeros).
pub fn harmonic_key(layer: &Layer) -> Option<String> {
    let i = layer.input;
    let input = format!("1_{}_{}_{}", i.channels, i.height, i.width);
    match layer.kind {
        OpKind::Conv => Some(format!(
            "ConvLayer-input:{input}-in_ch:{}-out_ch:{}-kernel:{}-stride:{}-use_se:0-use_bn:{}",
            i.channels,
            layer.out_channels,
            layer.kernel,
            layer.stride,
            u8::from(layer.batch_norm)
        )),
        OpKind::MbConv => {
            let (mid, expand) = if layer.has_expansion() {
                let ratio = (layer.mid_channels as f64 / i.channels.max(1) as f64).round();
                (layer.mid_channels, ratio as usize)
            } else {
                (0, 1)
            };
            Some(format!(
                "MBConvLayer-input:{input}-in_ch:{}-out_ch:{}-mid_ch:{mid}-expand:{expand}-kernel:{}-stride:{}-use_se:{}",
                i.channels,
                layer.out_channels,
                layer.kernel,
                layer.stride,
                u8::from(layer.se_channels.is_some())
            ))
        }
        OpKind::Linear => Some(format!(
            "LinearLayer-input:{}-in_ch:{}-out_ch:{}",
            i.channels, i.channels, layer.out_channels
        )),
        _ => None,
    }
}

/// The once-for-all / Dynamic-OFA key of layer `index` of a MobileNetV3 network (`None` for
/// kinds that format has no key for).
///
/// Convolutions are named by their role as in the published tables: the first layer is
/// `Conv`, a conv on a 1 x 1 input is the feature-mix `Conv_2`, any other conv the final
/// expansion `Conv_1`; the classifier is `Logits` and global pooling `AvgPool2D`.
pub fn ofa_key(layer: &Layer, index: usize) -> Option<String> {
    let i = layer.input;
    let o = layer.output();
    let hwc = |s: TensorShape| format!("{}x{}x{}", s.height, s.width, s.channels);
    match layer.kind {
        OpKind::Conv => {
            let name = if index == 0 {
                "Conv"
            } else if i.height == 1 && i.width == 1 {
                "Conv_2"
            } else {
                "Conv_1"
            };
            Some(format!("{name}-input:{}-output:{}", hwc(i), hwc(o)))
        }
        OpKind::MbConv => Some(format!(
            "expanded_conv-input:{}-output:{}-expand:{}-kernel:{}-stride:{}-idskip:{}-se:{}-hs:{}",
            hwc(i),
            hwc(o),
            layer.mid_channels,
            layer.kernel,
            layer.stride,
            u8::from(layer.has_identity_shortcut()),
            u8::from(layer.se_channels.is_some()),
            u8::from(layer.activation == Activation::HardSwish)
        )),
        OpKind::Linear => Some(format!(
            "Logits-input:1x1x{}-output:{}",
            i.channels, layer.out_channels
        )),
        OpKind::GlobalAvgPool => Some(format!("AvgPool2D-input:{}-output:{}", hwc(i), hwc(o))),
        _ => None,
    }
}

/// Parses a once-for-all key back into the [`Layer`] it describes (named by the key), or
/// `None` if the key is not in that format. Inverse of [`ofa_key`] for its layer kinds.
pub fn parse_ofa_key(key: &str) -> Option<Layer> {
    let mut parts = key.split('-');
    let kind = parts.next()?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for p in parts {
        let (k, v) = p.split_once(':')?;
        fields.insert(k, v);
    }
    let shape = |s: &str| -> Option<TensorShape> {
        let v: Vec<usize> = s
            .split('x')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        match v[..] {
            [h, w, c] => Some(TensorShape::new(c, h, w)),
            _ => None,
        }
    };
    let num = |name: &str| -> Option<usize> { fields.get(name)?.parse().ok() };
    let input = shape(fields.get("input")?)?;
    match kind {
        "Conv" | "Conv_1" | "Conv_2" => {
            let out = shape(fields.get("output")?)?;
            let stride = input.height.div_ceil(out.height.max(1)).max(1);
            let kernel = if kind == "Conv" { 3 } else { 1 };
            let l = Layer::conv(
                key,
                input,
                out.channels,
                kernel,
                stride,
                Activation::HardSwish,
            );
            Some(if kind == "Conv_2" {
                l.without_batch_norm()
            } else {
                l
            })
        }
        "expanded_conv" => {
            let out = shape(fields.get("output")?)?;
            let se = num("se")? == 1;
            let mid = num("expand")?;
            let act = if num("hs")? == 1 {
                Activation::HardSwish
            } else {
                Activation::Relu
            };
            Some(Layer::mbconv(
                key,
                input,
                out.channels,
                mid,
                num("kernel")?,
                num("stride")?,
                se.then_some((mid / 4).max(1)),
                act,
            ))
        }
        "AvgPool2D" => Some(Layer::global_avg_pool(key, input)),
        // `Logits-input:1x1x1536-output:1000` has a flat output.
        "Logits" => Some(Layer::linear(key, input.channels, num("output")?)),
        _ => None,
    }
}

/// How a [`LutModel`] turns a layer into a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyScheme {
    /// [`harmonic_key`].
    Harmonic,
    /// [`ofa_key`].
    Ofa,
    /// The layer's own `name` (FBNet-style spaces that name layers by their LUT key).
    LayerName,
}

impl KeyScheme {
    /// The key of layer `index`; a descriptive pseudo-key for kinds the scheme cannot name,
    /// so that the missing-key error still says what was looked up.
    pub fn key(&self, layer: &Layer, index: usize) -> String {
        let key = match self {
            Self::Harmonic => harmonic_key(layer),
            Self::Ofa => ofa_key(layer, index),
            Self::LayerName => Some(layer.name.clone()),
        };
        key.unwrap_or_else(|| format!("{:?}({})", layer.kind, layer.name))
    }
}

#[derive(Clone, Debug)]
enum Tables {
    Single(LayerLut),
    PerResolution(BTreeMap<usize, LayerLut>),
}

/// A LUT-backed [`CostModel`]: the cost of a network is the sum of its layers' entries.
#[derive(Clone)]
pub struct LutModel {
    name: String,
    tables: Tables,
    scheme: KeyScheme,
    free: Vec<OpKind>,
    fallback: Option<Arc<dyn CostModel>>,
    memo: Arc<RwLock<Memo>>,
}

/// A multiply-rotate hasher (the FxHash recipe) for the small integer keys of the memo:
/// several times faster than SipHash, and the keys are not attacker-controlled.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

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
type Memo = HashMap<LayerSig, Option<LutEntry>, BuildHasherDefault<FastHasher>>;

/// Entries memoised by a [`LutModel`] before it stops adding more.
const MEMO_CAPACITY: usize = 1 << 16;

/// Everything a key is built from, hashable without formatting; `table` tells per-resolution
/// tables apart (they share the memo).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct LayerSig {
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
    fn of(l: &Layer, first: bool, table: usize) -> Self {
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

impl std::fmt::Debug for LutModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LutModel")
            .field("name", &self.name)
            .field("scheme", &self.scheme)
            .field("free", &self.free)
            .field(
                "fallback",
                &self.fallback.as_ref().map(|m| m.name().to_string()),
            )
            .finish_non_exhaustive()
    }
}

impl LutModel {
    /// A model over one table. Identity and zero layers cost nothing; with the Harmonic
    /// scheme global average pooling is free too (that format has no key for it).
    pub fn new(lut: LayerLut, scheme: KeyScheme) -> Self {
        let mut free = vec![OpKind::Identity, OpKind::Zero];
        if scheme == KeyScheme::Harmonic {
            free.push(OpKind::GlobalAvgPool);
        }
        Self {
            name: lut.name.clone(),
            tables: Tables::Single(lut),
            scheme,
            free,
            fallback: None,
            memo: Arc::default(),
        }
    }

    /// A model over one table per input resolution (the network's input height picks it).
    pub fn per_resolution(
        name: impl Into<String>,
        tables: BTreeMap<usize, LayerLut>,
        scheme: KeyScheme,
    ) -> Self {
        Self {
            name: name.into(),
            tables: Tables::PerResolution(tables),
            scheme,
            free: vec![OpKind::Identity, OpKind::Zero],
            fallback: None,
            memo: Arc::default(),
        }
    }

    /// Loads every `<R>_lookup_table.json` of a once-for-all / Dynamic-OFA directory.
    pub fn from_ofa_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut tables = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| CostError::io(dir, e))? {
            let path = entry.map_err(|e| CostError::io(dir, e))?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(res) = file.strip_suffix("_lookup_table.json") else {
                continue;
            };
            let res: usize = res.parse().map_err(|_| {
                CostError::parse(&path, "file name must be `<resolution>_lookup_table.json`")
            })?;
            tables.insert(res, LayerLut::from_ofa_file(&path)?);
        }
        if tables.is_empty() {
            return Err(CostError::parse(
                dir,
                "no `<resolution>_lookup_table.json` file",
            ));
        }
        Ok(Self::per_resolution(
            dir.display().to_string(),
            tables,
            KeyScheme::Ofa,
        ))
    }

    /// Layers of these kinds cost nothing (replaces the default list).
    pub fn with_free_kinds(mut self, kinds: &[OpKind]) -> Self {
        self.free = kinds.to_vec();
        self
    }

    /// Layers without an entry are costed by `fallback` instead of failing.
    pub fn with_fallback(mut self, fallback: Arc<dyn CostModel>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// The resolutions of a per-resolution model (empty for a single table).
    pub fn resolutions(&self) -> Vec<usize> {
        match &self.tables {
            Tables::Single(_) => Vec::new(),
            Tables::PerResolution(t) => t.keys().copied().collect(),
        }
    }

    /// The table for `network` and its id in the memo (its resolution, or 0).
    fn table_for(&self, network: &Network) -> Result<(usize, &LayerLut)> {
        match &self.tables {
            Tables::Single(t) => Ok((0, t)),
            Tables::PerResolution(t) => {
                let r = network.input.height;
                t.get(&r)
                    .map(|t| (r, t))
                    .ok_or_else(|| CostError::MissingKey {
                        table: self.name.clone(),
                        key: format!("resolution {}", network.input.height),
                    })
            }
        }
    }

    fn estimate_with(
        &self,
        network: &Network,
        point: &OperatingPoint,
        mut local: Option<&mut Memo>,
    ) -> Result<Cost> {
        let table = self.table_for(network)?;
        let mut total = Cost {
            latency_ms: 0.0,
            energy_mj: Some(0.0),
            peak_memory_bytes: None,
        };
        for (i, layer) in network.layers.iter().enumerate() {
            total = total.then(self.layer_cost(table, layer, i, point, local.as_deref_mut())?);
        }
        Ok(total)
    }

    /// Cost of one layer; `local` is a per-thread copy of the memo that batch estimation keeps,
    /// so that parallel workers do not contend for the shared lock on every layer.
    fn layer_cost(
        &self,
        (table_id, table): (usize, &LayerLut),
        layer: &Layer,
        index: usize,
        point: &OperatingPoint,
        local: Option<&mut Memo>,
    ) -> Result<Cost> {
        if self.free.contains(&layer.kind) {
            return Ok(Cost {
                latency_ms: 0.0,
                energy_mj: Some(0.0),
                peak_memory_bytes: None,
            });
        }
        let entry = if self.scheme == KeyScheme::LayerName {
            table.get(&layer.name).copied()
        } else {
            // Formatting a key costs far more than the lookup: memoise by layer structure.
            let sig = LayerSig::of(layer, index == 0, table_id);
            let local_hit = local.as_deref().and_then(|m| m.get(&sig).copied());
            let hit =
                local_hit.or_else(|| self.memo.read().ok().and_then(|m| m.get(&sig).copied()));
            let e = match hit {
                Some(e) => e,
                None => {
                    let e = table.get(&self.scheme.key(layer, index)).copied();
                    if let Ok(mut m) = self.memo.write()
                        && m.len() < MEMO_CAPACITY
                    {
                        m.insert(sig, e);
                    }
                    e
                }
            };
            if local_hit.is_none()
                && let Some(m) = local
                && m.len() < MEMO_CAPACITY
            {
                m.insert(sig, e);
            }
            e
        };
        if let Some(e) = entry {
            return Ok(e.cost());
        }
        let key = self.scheme.key(layer, index);
        match table.get(&key) {
            Some(e) => Ok(e.cost()),
            None => match &self.fallback {
                Some(f) => f.estimate(&Network::new(layer.input, vec![layer.clone()]), point),
                None => Err(CostError::MissingKey {
                    table: table.name.clone(),
                    key,
                }),
            },
        }
    }
}

impl CostModel for LutModel {
    fn name(&self) -> &str {
        "lut"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        self.estimate_with(network, point, None)
    }

    /// Each rayon worker keeps its own copy of the memo, filled from the shared one.
    fn estimate_batch(&self, networks: &[Network], point: &OperatingPoint) -> Vec<Result<Cost>> {
        networks
            .par_iter()
            .map_init(Memo::default, |local, n| {
                self.estimate_with(n, point, Some(local))
            })
            .collect()
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let table = self.table_for(network)?;
        let layers = network
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer_cost(table, l, i, point, None))
            .collect::<Result<Vec<_>>>()?;
        let total = layers.iter().fold(
            Cost {
                latency_ms: 0.0,
                energy_mj: Some(0.0),
                peak_memory_bytes: None,
            },
            |a, c| a.then(*c),
        );
        Ok(CostBreakdown { layers, total })
    }
}

/// Input setting of the HW-NAS-Bench FBNet space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FbNetInput {
    /// CIFAR-100, 32 x 32 input (stride-1 stem).
    Cifar100,
    /// ImageNet, 224 x 224 input.
    ImageNet,
}

/// HW-NAS-Bench's FBNet per-block LUT: `{metric: {block key: value}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FbNetLut {
    name: String,
    metrics: BTreeMap<String, HashMap<String, f64>>,
}

/// Block choices of the FBNet space in HW-NAS-Bench's order: (expansion, kernel, groups);
/// `None` is the skip block.
pub const FBNET_BLOCKS: [Option<(usize, usize, usize)>; 9] = [
    Some((1, 3, 1)),
    Some((1, 3, 2)),
    Some((3, 3, 1)),
    Some((6, 3, 1)),
    Some((1, 5, 1)),
    Some((1, 5, 2)),
    Some((3, 5, 1)),
    Some((6, 5, 1)),
    None,
];

impl FbNetLut {
    /// Loads `hwnasbench_fbnet_lut.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| CostError::io(path, e))?;
        let raw: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
            serde_json::from_str(&text).map_err(|e| CostError::parse(path, e.to_string()))?;
        let mut metrics = BTreeMap::new();
        for (metric, table) in raw {
            let mut m = HashMap::with_capacity(table.len());
            for (key, v) in table {
                let x = json_number(&v).ok_or_else(|| {
                    CostError::parse(
                        path,
                        format!("metric `{metric}`, key `{key}`: not a number"),
                    )
                })?;
                m.insert(key, x);
            }
            metrics.insert(metric, m);
        }
        Ok(Self {
            name: path.display().to_string(),
            metrics,
        })
    }

    /// The metric names (e.g. `raspi4_latency`, `fpga_energy`).
    pub fn metrics(&self) -> Vec<&str> {
        self.metrics.keys().map(String::as_str).collect()
    }

    /// The value of `key` under `metric`.
    pub fn get(&self, metric: &str, key: &str) -> Result<f64> {
        let table = self
            .metrics
            .get(metric)
            .ok_or_else(|| CostError::MissingKey {
                table: self.name.clone(),
                key: format!("metric {metric}"),
            })?;
        table
            .get(key)
            .copied()
            .ok_or_else(|| CostError::MissingKey {
                table: format!("{}[{metric}]", self.name),
                key: key.to_string(),
            })
    }

    /// The block keys (stem, 22 searchable layers, head) of an architecture given by its 22
    /// block indices (0..=8, [`FBNET_BLOCKS`] order).
    pub fn layer_keys(ops: &[usize], input: FbNetInput) -> Result<Vec<String>> {
        // (out channels, stride) of the 22 searchable layers.
        const CIFAR: [(usize, usize); 22] = [
            (16, 1),
            (24, 1),
            (24, 1),
            (24, 1),
            (24, 1),
            (32, 2),
            (32, 1),
            (32, 1),
            (32, 1),
            (64, 2),
            (64, 1),
            (64, 1),
            (64, 1),
            (112, 1),
            (112, 1),
            (112, 1),
            (112, 1),
            (184, 2),
            (184, 1),
            (184, 1),
            (184, 1),
            (352, 1),
        ];
        if ops.len() != 22 {
            return Err(CostError::InvalidParameter {
                name: "ops".to_string(),
                reason: format!("an FBNet architecture has 22 layers, got {}", ops.len()),
            });
        }
        let (mut h, stem, head_classes) = match input {
            FbNetInput::Cifar100 => (
                32usize,
                "ConvNorm_H32_W32_Cin3_Cout16_kernel3_stride1_group1",
                100,
            ),
            FbNetInput::ImageNet => (
                112usize,
                "ConvNorm_H224_W224_Cin3_Cout16_kernel3_stride2_group1",
                1000,
            ),
        };
        let mut keys = vec![stem.to_string()];
        let mut cin = 16;
        for (i, (&op, &(cout, cifar_stride))) in ops.iter().zip(CIFAR.iter()).enumerate() {
            // ImageNet strides: the second layer also downsamples.
            let s = if input == FbNetInput::ImageNet && i == 1 {
                2
            } else {
                cifar_stride
            };
            let block = FBNET_BLOCKS
                .get(op)
                .ok_or_else(|| CostError::InvalidParameter {
                    name: format!("ops[{i}]"),
                    reason: format!("block index must be 0..=8, got {op}"),
                })?;
            keys.push(match block {
                Some((e, k, g)) => {
                    format!("ConvBlock_H{h}_W{h}_Cin{cin}_Cout{cout}_exp{e}_kernel{k}_stride{s}_group{g}")
                }
                None => format!("Skip_H{h}_W{h}_Cin{cin}_Cout{cout}_stride{s}"),
            });
            h = h.div_ceil(s);
            cin = cout;
        }
        let head = if input == FbNetInput::Cifar100 {
            1504
        } else {
            1984
        };
        keys.push(format!(
            "ConvNorm_H{h}_W{h}_Cin352_Cout{head}_kernel1_stride1_group1"
        ));
        keys.push(format!(
            "AvgP_H{h}_W{h}_Cin{head}_Cout{head}_kernel{h}_stride1"
        ));
        keys.push(format!("FC_Cin{head}_Cout{head_classes}"));
        Ok(keys)
    }

    /// Parses HW-NAS-Bench's `ops` string: 22 block digits (a leading `0` dropped by a
    /// numeric export is restored).
    pub fn parse_ops(ops: &str) -> Result<Vec<usize>> {
        let ops = ops.trim();
        let digits: Option<Vec<usize>> = ops
            .chars()
            .map(|c| c.to_digit(10).map(|d| d as usize))
            .collect();
        match digits {
            Some(mut d) if d.len() <= 22 && !d.is_empty() => {
                while d.len() < 22 {
                    d.insert(0, 0);
                }
                Ok(d)
            }
            _ => Err(CostError::InvalidParameter {
                name: "ops".to_string(),
                reason: format!("expected up to 22 digits 0-8, got `{ops}`"),
            }),
        }
    }

    /// Sum of `metric` over the architecture's blocks.
    pub fn sum_ops(&self, metric: &str, ops: &[usize], input: FbNetInput) -> Result<f64> {
        Self::layer_keys(ops, input)?
            .iter()
            .map(|k| self.get(metric, k))
            .sum()
    }

    /// A cost model summing `latency_metric` (and `energy_metric`) over the network's layers,
    /// looked up by layer name.
    pub fn model(
        self: &Arc<Self>,
        latency_metric: &str,
        energy_metric: Option<&str>,
    ) -> Result<FbNetLutModel> {
        for m in std::iter::once(latency_metric).chain(energy_metric) {
            if !self.metrics.contains_key(m) {
                return Err(CostError::InvalidParameter {
                    name: "metric".to_string(),
                    reason: format!("`{m}` is not one of {:?}", self.metrics()),
                });
            }
        }
        Ok(FbNetLutModel {
            lut: Arc::clone(self),
            latency: latency_metric.to_string(),
            energy: energy_metric.map(str::to_string),
        })
    }
}

/// [`FbNetLut`] as a [`CostModel`] for networks whose layers are named by their block keys.
#[derive(Clone, Debug)]
pub struct FbNetLutModel {
    lut: Arc<FbNetLut>,
    latency: String,
    energy: Option<String>,
}

impl FbNetLutModel {
    fn layer(&self, layer: &Layer) -> Result<Cost> {
        Ok(Cost {
            latency_ms: self.lut.get(&self.latency, &layer.name)?,
            energy_mj: match &self.energy {
                Some(m) => Some(self.lut.get(m, &layer.name)?),
                None => None,
            },
            peak_memory_bytes: None,
        })
    }
}

impl CostModel for FbNetLutModel {
    fn name(&self) -> &str {
        "fbnet-lut"
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> Result<Cost> {
        let mut total = Cost::latency(0.0);
        total.energy_mj = self.energy.as_ref().map(|_| 0.0);
        for l in &network.layers {
            total = total.then(self.layer(l)?);
        }
        Ok(total)
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let layers = network
            .layers
            .iter()
            .map(|l| self.layer(l))
            .collect::<Result<Vec<_>>>()?;
        Ok(CostBreakdown {
            layers,
            total: self.estimate(network, point)?,
        })
    }
}
