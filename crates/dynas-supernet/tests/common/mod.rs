//! Fixtures shared by the supernet integration tests.

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
