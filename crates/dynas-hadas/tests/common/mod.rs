//! Fixtures shared by the supernet integration tests.

// Each test binary includes this module and uses only some of its fixtures.
#![allow(dead_code)]

use dynas_space::seeded_rng;
use dynas_supernet::Dataset;

/// `n` 16x16 grey images of 5 classes with class-dependent brightness, so that a few training
/// steps can learn something.
pub fn tiny_dataset(n: usize, seed: u64) -> Dataset {
    use rand::Rng;
    let mut rng = seeded_rng(seed);
    let labels: Vec<u8> = (0..n).map(|i| (i % 5) as u8).collect();
    let pixels: Vec<u8> = labels
        .iter()
        .flat_map(|&l| {
            let base = l as u32 * 40;
            (0..16 * 16)
                .map(|_| (base + rng.random_range(0..40u32)) as u8)
                .collect::<Vec<_>>()
        })
        .collect();
    Dataset::from_parts(pixels, labels, (1, 16, 16), 5).unwrap()
}

/// Sets every variable of `vs` whose name passes `keep` to random values (running variances
/// positive), so that batch norms and biases are far from their identity initialisation.
pub fn randomise(vs: &tch::nn::VarStore, keep: impl Fn(&str) -> bool) {
    for (name, var) in vs.variables() {
        if !keep(&name) {
            continue;
        }
        let noise = tch::Tensor::randn(var.size(), (tch::Kind::Float, tch::Device::Cpu));
        let value = if name.ends_with("running_var") {
            noise.abs() + 0.25
        } else {
            noise * 0.5
        };
        tch::no_grad(|| var.shallow_clone().copy_(&value));
    }
}
