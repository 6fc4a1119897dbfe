//! Build a per-layer lookup table for the machine you are on, save it in the Harmonic-NAS JSON
//! format, and use it as a cost model.
//!
//! ```text
//! cargo run --release -p dynas-cost --example cost_host_lut -- [OUT.json]
//! ```
//! The layers are timed by the pure-Rust reference executor (`HostExecutor`, fp32, batch 1:
//! 2 warm-ups, median of 7). For a real framework, time your own closure with
//! `dynas_cost::measure::time_closure` and insert the entries into a `LayerLut` the same way.

use clap::Parser;
use dynas_cost::measure::{MeasureConfig, build_lut};
use dynas_cost::{CostModel, KeyScheme, LayerLut, LutModel, OperatingPoint};
use dynas_space::{Activation, Layer, Network, TensorShape};

/// OFA-MNIST-like networks (the layer shapes of `crates/dynas-data/data/lut/ofa-mnist`) with varying blocks.
fn networks() -> Vec<Network> {
    let input = TensorShape::new(1, 28, 28);
    let mut nets = Vec::new();
    for expand in [3, 4, 6] {
        for kernel in [3, 5, 7] {
            let stem = Layer::conv("stem", input, 16, 3, 2, Activation::HardSwish);
            let b0 = Layer::mbconv("b0", stem.output(), 16, 16, 3, 1, None, Activation::Relu);
            let b1 = Layer::mbconv(
                "b1",
                b0.output(),
                24,
                16 * expand,
                kernel,
                2,
                None,
                Activation::Relu,
            );
            let b2 = Layer::mbconv(
                "b2",
                b1.output(),
                24,
                24 * expand,
                kernel,
                1,
                None,
                Activation::Relu,
            );
            let fe = Layer::conv("final_expand", b2.output(), 40, 1, 1, Activation::HardSwish);
            let gap = Layer::global_avg_pool("gap", fe.output());
            let mix = Layer::conv("feature_mix", gap.output(), 80, 1, 1, Activation::HardSwish)
                .without_batch_norm();
            let fc = Layer::linear("classifier", 80, 10);
            nets.push(Network::new(
                input,
                vec![stem, b0, b1, b2, fe, gap, mix, fc],
            ));
        }
    }
    nets
}

/// Builds a per-layer lookup table for this machine and uses it as a cost model.
#[derive(Parser)]
struct Args {
    /// Where to write the table (Harmonic-NAS JSON).
    #[arg(default_value = "host_lut.json")]
    out: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = Args::parse().out;
    let nets = networks();
    let lut = build_lut(
        &nets,
        KeyScheme::Harmonic,
        &MeasureConfig::new(2, 7)?,
        "host",
    )?;
    lut.save_harmonic(&out)?;
    println!("{} layer entries written to {out}", lut.len());
    let model = LutModel::new(LayerLut::from_harmonic_file(&out)?, KeyScheme::Harmonic);
    for (i, n) in nets.iter().enumerate().step_by(4) {
        println!(
            "network {i}: {:.4} ms on this host",
            model.estimate(n, &OperatingPoint::default())?.latency_ms
        );
    }
    Ok(())
}
