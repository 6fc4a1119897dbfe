//! Fashion-MNIST split as the supernet example trains on it, for the commands that run a
//! trained supernet.

use std::path::Path;

use anyhow::{Context as _, bail};
use dynas::space::{TensorShape, seeded_rng};
use dynas::supernet::{Dataset, Split, SplitRecord};

use crate::paths::CommandFiles;

/// The input a supernet of `space` takes: its channels at its largest resolution (the images
/// it was trained on).
pub fn supernet_input(space: &dynas::space::MbConvSpace) -> anyhow::Result<TensorShape> {
    use dynas::space::SearchSpace as _;
    Ok(space.network(&space.subnet(&space.largest())?).input)
}

/// The IDX files of `--data` (plain or gzip) as inputs of a command.
pub fn declare_inputs(files: &mut CommandFiles, data: &Path) {
    for split in ["train", "t10k"] {
        for kind in ["images-idx3-ubyte", "labels-idx1-ubyte"] {
            let plain = format!("{split}-{kind}");
            files.input("--data", data.join(&plain));
            files.input("--data", data.join(format!("{plain}.gz")));
        }
    }
}

/// Refuses images whose shape is not the network's input (`input`: channels and the largest
/// resolution it takes; images of another size would be resized and scored without a word)
/// and warns about images that carry no information (every pixel of a channel the same).
pub fn check_images(
    data: &Path,
    split: &str,
    set: &Dataset,
    input: &TensorShape,
) -> anyhow::Result<()> {
    let (c, h, w) = set.image_shape();
    if (c, h, w) != (input.channels, input.height, input.width) {
        bail!(
            "--data `{}`: the {split} images are {c} x {h} x {w} (channels x height x width) but \
             the network takes {} x {} x {}",
            data.display(),
            input.channels,
            input.height,
            input.width
        );
    }
    if set.is_empty() {
        bail!(
            "--data `{}`: the {split} split has no images",
            data.display()
        );
    }
    let norm = set.channel_stats();
    if let Some(channel) = norm.std.iter().position(|&s| s < 1e-3) {
        eprintln!(
            "warning: --data `{}`: every {split} image has the same value in every pixel of \
             channel {channel} (mean {:.4}): the images carry no information there and \
             accuracies will be at chance",
            data.display(),
            norm.mean[channel]
        );
    }
    Ok(())
}

/// Refuses a validation split that may hold images `model` was trained on: the split record
/// written beside it ([`SplitRecord`]) must hold out the same `validation` images (seed 0).
/// A model without a record (trained before records were written) is accepted with a warning.
pub fn check_split(model: &Path, validation: usize) -> anyhow::Result<()> {
    let ours = SplitRecord {
        validation_images: validation,
        seed: 0,
        train_images: usize::MAX,
    };
    match SplitRecord::load_beside(model)? {
        Some(trained) => ours
            .check_held_out_from(&trained, &SplitRecord::path_beside(model))
            .with_context(|| format!("--validation {validation} against `{}`", model.display())),
        None => {
            eprintln!(
                "warning: `{}` has no split record beside it: nothing shows that its training \
                 images are not among the {validation} validation images",
                SplitRecord::path_beside(model).display()
            );
            Ok(())
        }
    }
}

/// `(train, validation, test)`: `validation` images held out of the training split with seed 0
/// (as `examples/experiments/supernet_fashion_mnist.rs` records beside the supernet), and the test split;
/// each checked against the network's `input` ([`check_images`]).
pub fn splits(
    data: &Path,
    validation: usize,
    input: &TensorShape,
) -> anyhow::Result<(Dataset, Dataset, Dataset)> {
    let full = Dataset::mnist_dir(data, Split::Train)
        .with_context(|| format!("--data `{}`", data.display()))?;
    check_images(data, "training", &full, input)?;
    if validation == 0 || validation >= full.len() {
        bail!(
            "--validation must be in 1..{}, got {validation}",
            full.len()
        );
    }
    let (train, held_out) = full.split_validation(validation, &mut seeded_rng(0))?;
    let test = Dataset::mnist_dir(data, Split::Test)
        .with_context(|| format!("--data `{}`", data.display()))?;
    check_images(data, "test", &test, input)?;
    Ok((train, held_out, test))
}
