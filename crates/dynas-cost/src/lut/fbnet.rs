//! HW-NAS-Bench's FBNet per-block table and its cost model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use dynas_space::fbnet::{FBNET_BLOCKS, FBNET_LAYERS};
use dynas_space::{FbNetSpace, Genotype, Layer, Network};
use serde::{Deserialize, Serialize};

use super::table::json_number;
use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::model::{Cost, CostBreakdown, CostModel};

/// Input setting of the HW-NAS-Bench FBNet space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FbNetInput {
    /// CIFAR-100, 32 x 32 input (stride-1 stem).
    Cifar100,
    /// ImageNet, 224 x 224 input.
    ImageNet,
}

impl FbNetInput {
    /// Both settings.
    pub const ALL: [FbNetInput; 2] = [FbNetInput::Cifar100, FbNetInput::ImageNet];

    /// The space of this setting, which owns the block codec and the layer keys
    /// ([`FbNetSpace::cifar100`] or [`FbNetSpace::imagenet`]); built once.
    pub fn space(self) -> &'static FbNetSpace {
        static CIFAR100: OnceLock<FbNetSpace> = OnceLock::new();
        static IMAGENET: OnceLock<FbNetSpace> = OnceLock::new();
        match self {
            Self::Cifar100 => CIFAR100.get_or_init(FbNetSpace::cifar100),
            Self::ImageNet => IMAGENET.get_or_init(FbNetSpace::imagenet),
        }
    }
}

/// The 22 block indices of `ops`, checked.
fn checked_blocks(ops: &[usize]) -> Result<[usize; FBNET_LAYERS]> {
    if ops.len() != FBNET_LAYERS {
        return Err(CostError::InvalidParameter {
            name: "ops".to_string(),
            reason: format!(
                "an FBNet architecture has {FBNET_LAYERS} layers, got {}",
                ops.len()
            ),
        });
    }
    let mut blocks = [0; FBNET_LAYERS];
    for (i, (&op, b)) in ops.iter().zip(blocks.iter_mut()).enumerate() {
        if op >= FBNET_BLOCKS.len() {
            return Err(CostError::InvalidParameter {
                name: format!("ops[{i}]"),
                reason: format!("block index must be 0..=8, got {op}"),
            });
        }
        *b = op;
    }
    Ok(blocks)
}

fn block_layer(space: &FbNetSpace, layer: usize, block: usize) -> Result<&Layer> {
    space
        .block_layer(layer, block)
        .ok_or_else(|| CostError::InvalidParameter {
            name: format!("ops[{layer}]"),
            reason: format!("no block {block} at layer {layer}"),
        })
}

/// HW-NAS-Bench's FBNet per-block LUT: `{metric: {block key: value}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FbNetLut {
    name: String,
    metrics: BTreeMap<String, HashMap<String, f64>>,
}

impl FbNetLut {
    /// Loads `hwnasbench_fbnet_lut.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path).map_err(|e| CostError::io(path, e))?;
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

    /// The block keys (stem, 22 searchable layers, head conv, pooling, classifier) of an
    /// architecture given by its 22 block indices (0..=8, [`FBNET_BLOCKS`] order), as the
    /// space of `input` names its layers.
    pub fn layer_keys(ops: &[usize], input: FbNetInput) -> Result<Vec<String>> {
        let space = input.space();
        let blocks = checked_blocks(ops)?;
        let mut keys = Vec::with_capacity(FBNET_LAYERS + 4);
        keys.push(space.stem().name.clone());
        for (i, &b) in blocks.iter().enumerate() {
            keys.push(block_layer(space, i, b)?.name.clone());
        }
        keys.extend(space.tail().iter().map(|l| l.name.clone()));
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

    /// A cost model summing `latency_metric` (and `energy_metric`) over the network's layers.
    /// The table is indexed once per input setting by (layer, block choice), so a network
    /// decoded by that setting's [`FbNetSpace`] (which carries its block genes) costs 26
    /// array reads; other networks are looked up by layer name.
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
        let settings = FbNetInput::ALL
            .map(|input| GenotypeTable::new(self, input, latency_metric, energy_metric));
        Ok(FbNetLutModel {
            lut: Arc::clone(self),
            latency: latency_metric.to_string(),
            energy: energy_metric.map(str::to_string),
            settings,
        })
    }
}

/// A layer's cost, or the (metric, key) the table lacks.
type Slot = std::result::Result<Cost, (String, String)>;

/// Costs of one input setting indexed by position: the stem, `blocks[layer][block]`, the
/// three tail layers.
#[derive(Clone, Debug)]
struct GenotypeTable {
    input: FbNetInput,
    stem: Slot,
    blocks: Vec<[Slot; 9]>,
    tail: [Slot; 3],
}

impl GenotypeTable {
    fn new(lut: &FbNetLut, input: FbNetInput, latency: &str, energy: Option<&str>) -> Self {
        let slot = |layer: &Layer| -> Slot {
            let value = |metric: &str| lut.metrics.get(metric)?.get(&layer.name).copied();
            let missing = |metric: &str| (metric.to_string(), layer.name.clone());
            let latency_ms = value(latency).ok_or_else(|| missing(latency))?;
            let energy_mj = match energy {
                Some(m) => Some(value(m).ok_or_else(|| missing(m))?),
                None => None,
            };
            Ok(Cost {
                latency_ms,
                energy_mj,
                peak_memory_bytes: None,
            })
        };
        let space = input.space();
        let blocks = (0..FBNET_LAYERS)
            .map(|i| {
                std::array::from_fn(|b| match space.block_layer(i, b) {
                    Some(l) => slot(l),
                    None => Err((latency.to_string(), format!("layer {i} block {b}"))),
                })
            })
            .collect();
        let tail = space.tail();
        Self {
            input,
            stem: slot(space.stem()),
            blocks,
            tail: std::array::from_fn(|k| slot(&tail[k])),
        }
    }

    /// Whether `network` was decoded by this setting's space (its fixed layers match and it
    /// carries 22 block genes); the block indices if so.
    fn blocks_of(&self, network: &Network) -> Option<[usize; FBNET_LAYERS]> {
        let space = self.input.space();
        let layers = &network.layers;
        if layers.len() != FBNET_LAYERS + 4
            || layers[0].name != space.stem().name
            || layers[FBNET_LAYERS + 1..]
                .iter()
                .zip(space.tail())
                .any(|(a, b)| a.name != b.name)
        {
            return None;
        }
        let genes = network.genes.as_ref()?.genes();
        if genes.len() != FBNET_LAYERS || genes.iter().any(|&b| b >= FBNET_BLOCKS.len()) {
            return None;
        }
        let mut blocks = [0; FBNET_LAYERS];
        blocks.copy_from_slice(genes);
        Some(blocks)
    }

    /// The per-layer slots of an architecture, in network order.
    fn slots(&self, blocks: &[usize; FBNET_LAYERS]) -> impl Iterator<Item = &Slot> {
        std::iter::once(&self.stem)
            .chain(self.blocks.iter().zip(blocks).map(|(row, &b)| &row[b]))
            .chain(&self.tail)
    }
}

/// [`FbNetLut`] as a [`CostModel`] for networks whose layers are named by their block keys
/// (networks of [`FbNetSpace`]).
#[derive(Clone, Debug)]
pub struct FbNetLutModel {
    lut: Arc<FbNetLut>,
    latency: String,
    energy: Option<String>,
    /// One table per [`FbNetInput::ALL`] setting.
    settings: [GenotypeTable; 2],
}

impl FbNetLutModel {
    fn by_name(&self, layer: &Layer) -> Result<Cost> {
        Ok(Cost {
            latency_ms: self.lut.get(&self.latency, &layer.name)?,
            energy_mj: match &self.energy {
                Some(m) => Some(self.lut.get(m, &layer.name)?),
                None => None,
            },
            peak_memory_bytes: None,
        })
    }

    fn slot_cost(&self, slot: &Slot) -> Result<Cost> {
        slot.clone().map_err(|(metric, key)| CostError::MissingKey {
            table: format!("{}[{metric}]", self.lut.name),
            key,
        })
    }

    fn empty(&self) -> Cost {
        Cost {
            latency_ms: 0.0,
            energy_mj: self.energy.as_ref().map(|_| 0.0),
            peak_memory_bytes: None,
        }
    }

    /// Cost of the architecture with block indices `ops` (22 of 0..=8) in setting `input`,
    /// without building its network: 26 array reads.
    pub fn estimate_ops(&self, ops: &[usize], input: FbNetInput) -> Result<Cost> {
        let blocks = checked_blocks(ops)?;
        let table = match input {
            FbNetInput::Cifar100 => &self.settings[0],
            FbNetInput::ImageNet => &self.settings[1],
        };
        table
            .slots(&blocks)
            .try_fold(self.empty(), |acc, s| Ok(acc.then(self.slot_cost(s)?)))
    }

    /// Cost of a genotype of the space of `input` (see [`FbNetSpace::blocks`]).
    pub fn estimate_genotype(&self, genotype: &Genotype, input: FbNetInput) -> Result<Cost> {
        let blocks = input.space().blocks(genotype)?;
        self.estimate_ops(&blocks, input)
    }

    /// The table of the setting that decoded `network`, with its blocks.
    fn indexed(&self, network: &Network) -> Option<(&GenotypeTable, [usize; FBNET_LAYERS])> {
        self.settings
            .iter()
            .find_map(|t| Some((t, t.blocks_of(network)?)))
    }
}

impl CostModel for FbNetLutModel {
    fn name(&self) -> &str {
        "fbnet-lut"
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> Result<Cost> {
        if let Some((table, blocks)) = self.indexed(network) {
            return table
                .slots(&blocks)
                .try_fold(self.empty(), |acc, s| Ok(acc.then(self.slot_cost(s)?)));
        }
        network
            .layers
            .iter()
            .try_fold(self.empty(), |acc, l| Ok(acc.then(self.by_name(l)?)))
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let layers = match self.indexed(network) {
            Some((table, blocks)) => table
                .slots(&blocks)
                .map(|s| self.slot_cost(s))
                .collect::<Result<Vec<_>>>()?,
            None => network
                .layers
                .iter()
                .map(|l| self.by_name(l))
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(CostBreakdown {
            layers,
            total: self.estimate(network, point)?,
        })
    }
}
