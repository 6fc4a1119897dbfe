//! Shared test helpers: synthetic 28x28 one-channel images (no dataset files needed).

use dynas_supernet::Dataset;
use rand::{Rng, SeedableRng};

/// `n` random images; the label is the quadrant with the brightest mean plus a random offset
/// of 0 or 5, so that a network has something (a little) to learn.
pub fn images(n: usize, seed: u64) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let q = rng.random_range(0..4usize);
        for y in 0..28 {
            for x in 0..28 {
                let here = (y / 14) * 2 + x / 14 == q;
                let base: u8 = if here { 120 } else { 0 };
                pixels.push(base.saturating_add(rng.random_range(0..100)));
            }
        }
        labels.push((q + 5 * rng.random_range(0..2usize)) as u8);
    }
    Dataset::from_parts(pixels, labels, (1, 28, 28), 10).expect("valid synthetic images")
}
