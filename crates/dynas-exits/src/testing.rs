//! Test helpers: a MACs-proportional cost model and a synthetic backbone.

use dynas_cost::{Cost, CostBreakdown, CostModel, OperatingPoint, Result};
use dynas_space::{Activation, Layer, Network, TensorShape};

/// 1 ms per 10^6 MACs at 1 GHz (scaled by the clock), 2 mJ per ms.
#[derive(Default)]
pub struct MacsModel;

impl MacsModel {
    fn cost(macs: u64, point: &OperatingPoint) -> Cost {
        let ghz = point.gpu_hz().unwrap_or(1_000_000_000) as f64 / 1e9;
        let ms = macs as f64 / 1e6 / ghz;
        Cost {
            latency_ms: ms,
            energy_mj: Some(2.0 * ms),
            peak_memory_bytes: None,
        }
    }
}

impl CostModel for MacsModel {
    fn name(&self) -> &str {
        "macs"
    }
    fn estimate(&self, network: &Network, point: &OperatingPoint) -> Result<Cost> {
        Ok(Self::cost(network.macs(), point))
    }
    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let layers: Vec<Cost> = network
            .layers
            .iter()
            .map(|l| Self::cost(l.macs(), point))
            .collect();
        Ok(CostBreakdown {
            layers,
            total: Self::cost(network.macs(), point),
        })
    }
}

/// A CIFAR-sized MobileNetV3-like chain: stem conv, `blocks` MBConv blocks (channels growing,
/// stride 2 every third block), final 1x1 conv, pool and classifier.
pub fn chain_network(blocks: usize, classes: usize) -> Network {
    let mut layers = vec![Layer::conv(
        "stem",
        TensorShape::new(3, 32, 32),
        16,
        3,
        1,
        Activation::HardSwish,
    )];
    let mut shape = layers[0].output();
    for b in 0..blocks {
        let out = 16 + 8 * b;
        let stride = if b % 3 == 2 { 2 } else { 1 };
        let l = Layer::mbconv(
            format!("block{b}"),
            shape,
            out,
            shape.channels * 4,
            3,
            stride,
            None,
            Activation::Relu,
        );
        shape = l.output();
        layers.push(l);
    }
    let mix = Layer::conv("mix", shape, 256, 1, 1, Activation::HardSwish);
    let pooled = mix.output();
    layers.push(mix);
    layers.push(Layer::global_avg_pool("pool", pooled));
    layers.push(Layer::linear("classifier", 256, classes));
    Network::new(TensorShape::new(3, 32, 32), layers)
}
