//! Supernet files: saves are atomic, a failed load changes nothing, and the loaders of user
//! files (IDX, CIFAR binary, safetensors weights) survive byte-mutation fuzzing seeded from
//! Fashion-MNIST and a real save. See `fuzz_support` for the mutations and `DYNAS_FUZZ_CASES`.

#[path = "../../dynas-search/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dynas_space::{Activation, ChoiceScope, FinalExpand, HeadSpec, MbConvSpace, StageSpec};
use dynas_supernet::data::read_idx;
use dynas_supernet::{CifarLabels, Dataset, Supernet, SupernetConfig, SupernetError};
use fuzz_support::{config, edits, mutate, scratch_file};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// A small space (one stage), so that a saved supernet is a few kilobytes.
fn small_space() -> MbConvSpace {
    let stage = StageSpec {
        name: "s1".to_string(),
        widths: vec![4, 8],
        depths: vec![1, 2],
        kernels: vec![3, 5],
        expand_ratios: vec![2],
        stride: 2,
        se: false,
        activation: Activation::Relu,
        scope: ChoiceScope::PerBlock,
    };
    let head = HeadSpec {
        in_channels: 1,
        resolutions: vec![12],
        first_conv_widths: vec![4],
        first_conv_stride: 2,
        first_conv_activation: Activation::Relu,
        first_block: None,
        final_expand: FinalExpand::Widths(vec![8]),
        feature_mix_widths: None,
        tail_activation: Activation::Relu,
        num_classes: 3,
        channel_divisor: 1,
        projection_shortcuts: true,
    };
    MbConvSpace::new("small", head, vec![stage]).unwrap()
}

fn supernet() -> Supernet {
    Supernet::new(small_space(), SupernetConfig::default(), Device::Cpu).unwrap()
}

fn snapshot(s: &Supernet) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = s
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.equal(&y.1))
}

#[test]
fn saves_are_atomic_and_a_failed_load_leaves_the_supernet_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supernet.safetensors");
    let saved = supernet();
    saved.save(&path).unwrap();
    saved.save(&path).unwrap();
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names, vec![path.clone()], "no temporary file is left");
    let mut other = supernet();
    other.load(&path).unwrap();
    assert!(same(&snapshot(&other), &snapshot(&saved)));

    // The same file with one weight set to NaN (the last in name order, so that every
    // earlier variable would have been overwritten by a loader that copies as it reads).
    let mut target = supernet();
    let before = snapshot(&target);
    let (last, _) = before.last().unwrap();
    let tensors: Vec<(String, Tensor)> = snapshot(&saved)
        .into_iter()
        .map(|(n, t)| {
            if &n == last {
                let bad = t.to_kind(Kind::Float).fill_(f64::NAN);
                (n, bad)
            } else {
                (n, t)
            }
        })
        .collect();
    let nan_path = dir.path().join("nan.safetensors");
    dynas_supernet::checkpoint::write_tensors(&nan_path, &tensors, Default::default()).unwrap();
    let err = target.load(&nan_path).unwrap_err();
    assert!(
        matches!(&err, SupernetError::Checkpoint { field, .. } if field == last),
        "{err}"
    );
    assert!(
        same(&snapshot(&target), &before),
        "a failed load changed weights"
    );
}

fn gunzip(path: &str) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("seed `{path}`: {e}"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The first `n` Fashion-MNIST test images and labels as IDX files (headers rewritten to `n`).
fn idx_seed(n: usize) -> &'static (Vec<u8>, Vec<u8>) {
    static SEED: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SEED.get_or_init(|| {
        let images = gunzip(&format!("{FASHION_MNIST}/t10k-images-idx3-ubyte.gz"));
        let labels = gunzip(&format!("{FASHION_MNIST}/t10k-labels-idx1-ubyte.gz"));
        let count = (n as u32).to_be_bytes();
        let mut i = images[..16].to_vec();
        i[4..8].copy_from_slice(&count);
        i.extend_from_slice(&images[16..16 + n * 784]);
        let mut l = labels[..8].to_vec();
        l[4..8].copy_from_slice(&count);
        l.extend_from_slice(&labels[8..8 + n]);
        (i, l)
    })
}

/// Four CIFAR-10 records made of Fashion-MNIST pixels (28x28 padded to 32x32, three channels)
/// and labels: the record layout of the real files.
fn cifar_seed() -> &'static Vec<u8> {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let (images, labels) = idx_seed(8);
        let mut out = Vec::new();
        for r in 0..4 {
            out.push(labels[8 + r]);
            let img = &images[16 + r * 784..16 + (r + 1) * 784];
            for _channel in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        let inside = (2..30).contains(&y) && (2..30).contains(&x);
                        out.push(if inside {
                            img[(y - 2) * 28 + (x - 2)]
                        } else {
                            0
                        });
                    }
                }
            }
        }
        out
    })
}

fn saved_seed() -> &'static Vec<u8> {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.safetensors");
        supernet().save(&path).unwrap();
        std::fs::read(&path).unwrap()
    })
}

fn names_file(err: &SupernetError, path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    err.to_string().contains(name.as_ref())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_files(labels_too in any::<bool>(), e in edits()) {
        let (images, labels) = idx_seed(8);
        let (_a, image_path) = scratch_file("images-idx3-ubyte", &mutate(images, &e));
        let label_bytes = if labels_too { mutate(labels, &e) } else { labels.clone() };
        let (_b, label_path) = scratch_file("labels-idx1-ubyte", &label_bytes);
        if let Err(err) = read_idx(&image_path) {
            prop_assert!(names_file(&err, &image_path), "{err}");
        }
        if let Ok(data) = Dataset::from_idx(&image_path, &label_path) {
            prop_assert!(data.labels().iter().all(|&l| (l as usize) < data.classes()));
        }
    }

    #[test]
    fn cifar_files(e in edits()) {
        let (_dir, path) = scratch_file("data_batch_1.bin", &mutate(cifar_seed(), &e));
        match Dataset::from_cifar_files(std::slice::from_ref(&path), CifarLabels::Cifar10) {
            Ok(data) => prop_assert_eq!(data.image_shape(), (3, 32, 32)),
            Err(err) => prop_assert!(names_file(&err, &path), "{err}"),
        }
    }

    #[test]
    fn supernet_weights(e in edits()) {
        let (_dir, path) = scratch_file("supernet.safetensors", &mutate(saved_seed(), &e));
        let mut s = supernet();
        let before = snapshot(&s);
        if let Err(err) = s.load(&path) {
            prop_assert!(names_file(&err, &path), "{err}");
            prop_assert!(same(&snapshot(&s), &before));
        }
    }
}
