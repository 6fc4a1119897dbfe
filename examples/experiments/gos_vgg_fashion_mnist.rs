//! GOS on a VGG-style plain CNN (64-64-128-128-256 channels, 87 M MACs) trained on Fashion-MNIST: train it (a few epochs on a subset),
//! adapt it by operator replacement, and measure original and adapted with libtorch on this
//! host (batch 1 and 64, 2 threads, interleaved).
//!
//! `cargo run --release -p dynas-gos --features tch --example gos_vgg_fashion_mnist -- [--train-images N]
//! [--epochs E] [--fine-tune-epochs F] [--data DIR] [--out DIR] [--retrain]`

#[path = "gos_common/mod.rs"]
mod gos_common;

use dynas_space::{Activation, Layer, Network, PoolKind, TensorShape};

fn vgg() -> Network {
    let input = TensorShape::new(1, 28, 28);
    let relu = Activation::Relu;
    let c1 = Layer::conv("c1", input, 64, 3, 1, relu);
    let c2 = Layer::conv("c2", c1.output(), 64, 3, 1, relu);
    let p1 = Layer::pool("p1", PoolKind::Max, c2.output(), 2, 2);
    let c3 = Layer::conv("c3", p1.output(), 128, 3, 1, relu);
    let c4 = Layer::conv("c4", c3.output(), 128, 3, 1, relu);
    let p2 = Layer::pool("p2", PoolKind::Max, c4.output(), 2, 2);
    let c5 = Layer::conv("c5", p2.output(), 256, 3, 1, relu);
    let gap = Layer::global_avg_pool("gap", c5.output());
    let fc = Layer::linear("fc", 256, 10);
    Network::new(input, vec![c1, c2, p1, c3, c4, p2, c5, gap, fc])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gos_common::run("vgg", vgg())
}
