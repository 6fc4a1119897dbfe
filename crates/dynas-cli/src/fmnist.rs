//! Fashion-MNIST split as the supernet example trains on it, for the commands that run a
//! trained supernet.

use std::path::Path;

use anyhow::{Context as _, bail};
use dynas::space::seeded_rng;
use dynas::supernet::{Dataset, Split};

/// `(train, validation, test)`: `validation` images held out of the training split with seed 0
/// (as `examples/supernet_fashion_mnist.rs` does), and the test split.
pub fn splits(data: &Path, validation: usize) -> anyhow::Result<(Dataset, Dataset, Dataset)> {
    let full = Dataset::mnist_dir(data, Split::Train)
        .with_context(|| format!("--data `{}`", data.display()))?;
    if validation == 0 || validation >= full.len() {
        bail!(
            "--validation must be in 1..{}, got {validation}",
            full.len()
        );
    }
    let (train, held_out) = full.split_validation(validation, &mut seeded_rng(0))?;
    let test = Dataset::mnist_dir(data, Split::Test)
        .with_context(|| format!("--data `{}`", data.display()))?;
    Ok((train, held_out, test))
}
