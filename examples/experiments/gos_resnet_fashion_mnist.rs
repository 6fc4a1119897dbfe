//! GOS on a ResNet-style CNN (64-64-128-128 channels) trained on Fashion-MNIST: train it (a few epochs on a subset),
//! adapt it by operator replacement, and measure original and adapted with libtorch on this
//! host (batch 1 and 64, 2 threads, interleaved).
//!
//! `cargo run --release -p dynas-gos --features tch --example gos_resnet_fashion_mnist -- [--train-images N]
//! [--epochs E] [--fine-tune-epochs F] [--data DIR] [--out DIR] [--retrain]`

#[path = "gos_common/mod.rs"]
mod gos_common;

use dynas_space::{Activation, Layer, Network, TensorShape};

fn resnet() -> Network {
    let input = TensorShape::new(1, 28, 28);
    let stem = Layer::conv("stem", input, 64, 3, 1, Activation::Relu);
    let r1 = Layer::residual_block("r1", stem.output(), 64, 2);
    let r2 = Layer::residual_block("r2", r1.output(), 128, 1);
    let r3 = Layer::residual_block("r3", r2.output(), 128, 2);
    let gap = Layer::global_avg_pool("gap", r3.output());
    let fc = Layer::linear("fc", 128, 10);
    Network::new(input, vec![stem, r1, r2, r3, gap, fc])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gos_common::run("resnet", resnet())
}
