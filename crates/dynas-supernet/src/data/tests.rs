use super::*;
use dynas_space::seeded_rng;
use std::io::Write;
use std::path::Path;

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write_mnist(dir: &Path, gz: bool, n: u32) {
    let pixels: Vec<u8> = (0..n * 4 * 4).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let img = idx_bytes(&[n, 4, 4], &pixels);
    let lab = idx_bytes(&[n], &labels);
    let (img, lab, suffix) = if gz {
        (gzip(&img), gzip(&lab), ".gz")
    } else {
        (img, lab, "")
    };
    std::fs::write(dir.join(format!("train-images-idx3-ubyte{suffix}")), img).unwrap();
    std::fs::write(dir.join(format!("train-labels-idx1-ubyte{suffix}")), lab).unwrap();
}

#[test]
fn idx_plain_and_gzip_load_the_same() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_mnist(a.path(), false, 12);
    write_mnist(b.path(), true, 12);
    let da = Dataset::mnist_dir(a.path(), Split::Train).unwrap();
    let db = Dataset::mnist_dir(b.path(), Split::Train).unwrap();
    assert_eq!(da, db);
    assert_eq!(da.len(), 12);
    assert_eq!(da.image_shape(), (1, 4, 4));
    assert_eq!(da.labels()[11], 1);
}

#[test]
fn truncated_idx_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-idx3-ubyte");
    let mut bytes = idx_bytes(&[3, 4, 4], &[0u8; 48]);
    bytes.truncate(40);
    std::fs::write(&path, &bytes).unwrap();
    match read_idx(&path) {
        Err(SupernetError::MalformedData {
            path: p, offset, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(offset, 40);
        }
        other => panic!("expected MalformedData, got {other:?}"),
    }
    // Wrong type code.
    let mut bad = idx_bytes(&[1], &[0]);
    bad[2] = 0x0d;
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        read_idx(&path),
        Err(SupernetError::MalformedData { offset: 2, .. })
    ));
    // Truncated gzip stream.
    let gz = gzip(&idx_bytes(&[3, 4, 4], &[7u8; 48]));
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    assert!(matches!(
        read_idx(&path),
        Err(SupernetError::MalformedData { .. })
    ));
}

#[test]
fn bad_idx_label_is_reported_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("i");
    let lab = dir.path().join("l");
    std::fs::write(&img, idx_bytes(&[2, 2, 2], &[0u8; 8])).unwrap();
    std::fs::write(&lab, idx_bytes(&[2], &[3, 12])).unwrap();
    assert!(matches!(
        Dataset::from_idx(&img, &lab),
        Err(SupernetError::MalformedData { offset: 9, .. })
    ));
}

#[test]
fn cifar10_and_100_records_parse_and_truncation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut c10 = Vec::new();
    for r in 0..3u8 {
        c10.push(r);
        c10.extend(std::iter::repeat_n(r * 10, 3072));
    }
    let p10 = dir.path().join("test_batch.bin");
    std::fs::write(&p10, &c10).unwrap();
    let d = Dataset::cifar_dir(dir.path(), Split::Test, CifarLabels::Cifar10).unwrap();
    assert_eq!(
        (d.len(), d.image_shape(), d.classes()),
        (3, (3, 32, 32), 10)
    );
    assert_eq!(d.labels(), &[0, 1, 2]);

    let mut c100 = Vec::new();
    for r in 0..2u8 {
        c100.extend([r, 50 + r]);
        c100.extend(std::iter::repeat_n(1u8, 3072));
    }
    let p100 = dir.path().join("test.bin");
    std::fs::write(&p100, &c100).unwrap();
    let fine = Dataset::cifar_dir(dir.path(), Split::Test, CifarLabels::Cifar100Fine).unwrap();
    assert_eq!(fine.labels(), &[50, 51]);
    let coarse =
        Dataset::from_cifar_files(std::slice::from_ref(&p100), CifarLabels::Cifar100Coarse)
            .unwrap();
    assert_eq!(coarse.labels(), &[0, 1]);

    std::fs::write(&p10, &c10[..3073 + 100]).unwrap();
    match Dataset::from_cifar_files(std::slice::from_ref(&p10), CifarLabels::Cifar10) {
        Err(SupernetError::MalformedData { path, offset, .. }) => {
            assert_eq!(path, p10);
            assert_eq!(offset, 3073);
        }
        other => panic!("expected MalformedData, got {other:?}"),
    }
    let mut bad = c10.clone();
    bad[3073] = 10;
    std::fs::write(&p10, &bad).unwrap();
    assert!(matches!(
        Dataset::from_cifar_files(&[p10], CifarLabels::Cifar10),
        Err(SupernetError::MalformedData { offset: 3073, .. })
    ));
}

#[test]
fn split_record_round_trips_and_guards_the_validation_images() {
    // Each image's first pixel is its index, so splits can be compared by content.
    let pixels: Vec<u8> = (0..30u8).flat_map(|i| [i, 0, 0, 0]).collect();
    let labels: Vec<u8> = (0..30).map(|i| (i % 3) as u8).collect();
    let data = Dataset::from_parts(pixels, labels, (1, 2, 2), 3).unwrap();
    let ids = |d: &Dataset| -> Vec<u8> { d.pixels.chunks(4).map(|c| c[0]).collect() };
    let record = SplitRecord {
        validation_images: 8,
        seed: 3,
        train_images: 12,
    };
    let (train, val) = record.split(&data).unwrap();
    assert_eq!((train.len(), val.len()), (12, 8));
    assert!(ids(&train).iter().all(|i| !ids(&val).contains(i)));
    // Fewer training images take a prefix of the same rest: validation unchanged.
    let fewer = SplitRecord {
        train_images: 5,
        ..record
    };
    let (train5, val5) = fewer.split(&data).unwrap();
    assert_eq!(ids(&val5), ids(&val));
    assert_eq!(ids(&train5), ids(&train)[..5].to_vec());

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    assert_eq!(SplitRecord::load_beside(&model).unwrap(), None);
    record.save_beside(&model).unwrap();
    let path = SplitRecord::path_beside(&model);
    assert!(path.to_string_lossy().ends_with("m.safetensors.split.json"));
    let loaded = SplitRecord::load_beside(&model).unwrap().unwrap();
    assert_eq!(loaded, record);
    assert!(fewer.check_held_out_from(&loaded, &path).is_ok());
    let other_size = SplitRecord {
        validation_images: 9,
        ..record
    };
    match other_size.check_held_out_from(&loaded, &path) {
        Err(SupernetError::Checkpoint { field, path: p, .. }) => {
            assert_eq!(field, "validation_images");
            assert_eq!(p, path);
        }
        other => panic!("expected a Checkpoint error, got {other:?}"),
    }
    let other_seed = SplitRecord { seed: 4, ..record };
    assert!(matches!(
        other_seed.check_held_out_from(&loaded, &path),
        Err(SupernetError::Checkpoint { field, .. }) if field == "seed"
    ));
    std::fs::write(&path, "{\"validation_images\": 8}").unwrap();
    assert!(matches!(
        SplitRecord::load_beside(&model),
        Err(SupernetError::Json { .. })
    ));
}

#[test]
fn split_batches_and_augmentation() {
    let pixels: Vec<u8> = (0..20 * 4 * 4).map(|i| (i * 7 % 256) as u8).collect();
    let labels: Vec<u8> = (0..20).map(|i| (i % 4) as u8).collect();
    let data = Dataset::from_parts(pixels, labels, (1, 4, 4), 4).unwrap();
    let mut rng = seeded_rng(1);
    let (train, val) = data.split_validation(5, &mut rng).unwrap();
    assert_eq!((train.len(), val.len()), (15, 5));
    assert!(data.split_validation(20, &mut rng).is_err());

    let norm = Normalization {
        mean: vec![0.0],
        std: vec![1.0],
    };
    let sizes: Vec<usize> = train
        .batches(4, true, &norm, Augmentation::NONE, &mut rng, Device::Cpu)
        .map(|b| b.len())
        .collect();
    assert_eq!(sizes, vec![4, 4, 4, 3]);

    // Without augmentation a batch reproduces the pixels exactly.
    let b = data.batch(&[2], &norm, &Augmentation::NONE, &mut rng, Device::Cpu);
    let got = Vec::<f32>::try_from(b.images.flatten(0, -1)).unwrap();
    let want: Vec<f32> = data.pixels[32..48]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    assert_eq!(got, want);
    // A flip is its own inverse and a crop keeps the shape.
    let flip = Augmentation {
        pad: 0,
        horizontal_flip: true,
    };
    let mut flipped_once = false;
    for _ in 0..8 {
        let f = data.batch(&[2], &norm, &flip, &mut rng, Device::Cpu);
        let v = Vec::<f32>::try_from(f.images.flatten(0, -1)).unwrap();
        if v != want {
            flipped_once = true;
            assert_eq!(v[0], want[3]);
        }
    }
    assert!(flipped_once);
    let crop = Augmentation {
        pad: 2,
        horizontal_flip: false,
    };
    let c = data.batch(&[0, 1], &norm, &crop, &mut rng, Device::Cpu);
    assert_eq!(c.images.size(), vec![2, 1, 4, 4]);
    let stats = data.channel_stats();
    assert!(stats.mean[0] > 0.0 && stats.std[0] > 0.0);
}
