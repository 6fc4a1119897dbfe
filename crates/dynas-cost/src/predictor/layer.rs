//! The layer-level predictor: gradient-boosted trees on layer and clock features, summed over
//! a network's layers (nn-Meter's approach).

use std::path::Path;

use dynas_space::{Activation, Layer, Network, OpKind};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::{load_json, save_json};
use crate::analytical::layer_bytes;
use crate::device::{ClockDomain, ComputeUnit, OperatingPoint};
use crate::error::{CostError, Result};
use crate::learn::{Gbdt, GbdtParams};
use crate::model::{Cost, CostBreakdown, CostModel};

/// Number of features of [`layer_features`].
pub const LAYER_FEATURES: usize = 8 + 16;

/// Layer + clock features of the layer-level predictor.
pub fn layer_features(layer: &Layer, point: &OperatingPoint, unit: &ComputeUnit) -> Vec<f64> {
    let kind = match layer.kind {
        OpKind::Conv => 0,
        OpKind::MbConv => 1,
        OpKind::ResidualBlock => 2,
        OpKind::Linear => 3,
        OpKind::Pool(_) => 4,
        OpKind::GlobalAvgPool => 5,
        OpKind::Identity => 6,
        OpKind::Zero => 7,
        // Operators with no feature of their own (user-defined ones) are described by their
        // MACs and shapes like a convolution.
        _ => 0,
    };
    let mut f = vec![0.0; LAYER_FEATURES];
    f[kind] = 1.0;
    let o = layer.output();
    let inv_ghz = |hz: Option<u64>| hz.map_or(1.0, |h| 1e9 / h.max(1) as f64);
    let fc = inv_ghz(point.compute_hz(unit));
    let fm = inv_ghz(point.memory_hz());
    let macs = layer.macs() as f64;
    let bytes = layer_bytes(layer) as f64;
    let rest = [
        (macs + 1.0).ln(),
        (bytes + 1.0).ln(),
        (layer.params() as f64 + 1.0).ln(),
        layer.input.channels as f64,
        layer.out_channels as f64,
        layer.mid_channels as f64,
        layer.input.height as f64,
        o.height as f64,
        layer.kernel as f64,
        layer.stride as f64,
        f64::from(u8::from(layer.se_channels.is_some())),
        f64::from(u8::from(layer.activation == Activation::HardSwish)),
        fc,
        fm,
        (macs * fc + 1.0).ln(),
        (bytes * fm + 1.0).ln(),
    ];
    f[8..].copy_from_slice(&rest);
    f
}

/// A layer-level (nn-Meter style) predictor: boosted trees on [`layer_features`] predicting
/// log layer latency; a network costs the sum of its layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPredictor {
    unit: ComputeUnit,
    gbdt: Gbdt,
}

impl LayerPredictor {
    /// Fits on measured `(layer, operating point, latency ms)` samples (latency > 0);
    /// `unit` says which clock of the operating point drives compute.
    pub fn fit(
        samples: &[(Layer, OperatingPoint, f64)],
        unit: ComputeUnit,
        params: &GbdtParams,
    ) -> Result<Self> {
        if samples.len() < 2 {
            return Err(CostError::Fit {
                model: "layer-predictor".to_string(),
                reason: format!("need >= 2 samples, got {}", samples.len()),
            });
        }
        let mut x = Array2::zeros((samples.len(), LAYER_FEATURES));
        let mut y = Vec::with_capacity(samples.len());
        for (i, (layer, point, lat)) in samples.iter().enumerate() {
            if !(lat.is_finite() && *lat > 0.0) {
                return Err(CostError::Fit {
                    model: "layer-predictor".to_string(),
                    reason: format!(
                        "sample {i} (`{}`): latency must be positive, got {lat}",
                        layer.name
                    ),
                });
            }
            x.row_mut(i)
                .assign(&ndarray::ArrayView1::from(&layer_features(
                    layer, point, &unit,
                )));
            y.push(lat.ln());
        }
        Ok(Self {
            unit,
            gbdt: Gbdt::fit(&x, &y, params)?,
        })
    }

    /// Predicted latency (ms) of one layer.
    pub fn predict_layer(&self, layer: &Layer, point: &OperatingPoint) -> f64 {
        match layer.kind {
            OpKind::Identity | OpKind::Zero => 0.0,
            _ => self
                .gbdt
                .predict_row(ndarray::ArrayView1::from(&layer_features(
                    layer, point, &self.unit,
                )))
                .exp(),
        }
    }

    /// Saves as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_json(self, path.as_ref())
    }

    /// Loads from JSON written by [`LayerPredictor::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load_json(path.as_ref())
    }
}

impl LayerPredictor {
    /// Its features hold the compute unit's and the memory clock: another named domain's clock
    /// cannot be priced (the CPU / GPU clock the network does not run on does not affect it).
    fn check_domains(&self, point: &OperatingPoint) -> Result<()> {
        let [cpu, gpu, memory] = ClockDomain::WELL_KNOWN;
        point.check_domains(self.name(), &[cpu, gpu, memory, self.unit.domain()])
    }
}

impl CostModel for LayerPredictor {
    fn name(&self) -> &str {
        "layer-predictor"
    }

    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        self.check_domains(point)?;
        Ok(Cost::latency(
            network
                .layers
                .iter()
                .map(|l| self.predict_layer(l, point))
                .sum(),
        ))
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        self.check_domains(point)?;
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| Cost::latency(self.predict_layer(l, point)))
            .collect();
        let total = Cost::latency(layers.iter().map(|c| c.latency_ms).sum());
        Ok(CostBreakdown { layers, total })
    }
}
