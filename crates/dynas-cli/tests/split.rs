//! A validation split that may hold training images is refused: `dynas hadas` and `dynas serve`
//! read the split record the supernet example writes beside the supernet.
#![cfg(feature = "tch")]

use std::process::Command;

const FMNIST: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn a_validation_split_overlapping_the_training_images_is_refused() {
    if !std::path::Path::new(FMNIST)
        .join("train-images-idx3-ubyte.gz")
        .exists()
    {
        eprintln!("skipped: Debian's dataset-fashion-mnist is not installed (scripts/setup.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Only the split record matters here: the check runs before the weights are read.
    let supernet = dir.path().join("supernet.safetensors");
    std::fs::write(&supernet, b"not read").unwrap();
    // Trained with 1,000 images held out: 4,000 of a 5,000-image validation split could be
    // training images.
    std::fs::write(
        dir.path().join("supernet.safetensors.split.json"),
        r#"{"validation_images": 1000, "seed": 0, "train_images": 20000}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dynas"))
        .args(["hadas", "--no-progress", "--supernet"])
        .arg(&supernet)
        .args(["--data", FMNIST, "--validation", "5000", "--out"])
        .arg(dir.path().join("hadas"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("supernet.safetensors.split.json") && err.contains("validation_images"),
        "{err}"
    );
    assert!(!dir.path().join("hadas/deployment.json").exists());
}
