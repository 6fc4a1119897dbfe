//! [`LutModel`]: a network's cost is the sum of its layers' table entries.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::parallel::*;
use dynas_space::{Layer, Network, OpKind};

use super::memo::{LayerSig, MEMO_CAPACITY, Memo};
use super::{KeyScheme, LayerLut};
use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::model::{Cost, CostBreakdown, CostModel};

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
