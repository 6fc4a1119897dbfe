//! The file formats: MNIST / Fashion-MNIST IDX files (plain or gzip) and the CIFAR-10 /
//! CIFAR-100 binary format, read into a [`Dataset`].

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Result, SupernetError};

/// Which half of a dataset's official split to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training files.
    Train,
    /// The test files.
    Test,
}

/// Which label of the CIFAR-100 binary format to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CifarLabels {
    /// CIFAR-10: one label byte per record, 10 classes.
    Cifar10,
    /// CIFAR-100 coarse labels (20 superclasses).
    Cifar100Coarse,
    /// CIFAR-100 fine labels (100 classes).
    Cifar100Fine,
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let raw = dynas_space::files::read_input(path).map_err(|e| SupernetError::io(path, e))?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| SupernetError::MalformedData {
                path: path.to_path_buf(),
                offset: out.len() as u64,
                reason: format!("gzip stream is corrupt or truncated ({e})"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn malformed(path: &Path, offset: usize, reason: impl Into<String>) -> SupernetError {
    SupernetError::MalformedData {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Parses an IDX file of unsigned bytes (type code `0x08`); returns its dimensions and data.
///
/// The file may be gzip-compressed; offsets in errors count bytes of the decompressed stream.
pub fn read_idx(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<u8>)> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    if bytes.len() < 4 {
        return Err(malformed(
            path,
            bytes.len(),
            "file ends inside the 4-byte IDX magic number",
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(malformed(
            path,
            0,
            "IDX magic must start with two zero bytes",
        ));
    }
    if bytes[2] != 0x08 {
        return Err(malformed(
            path,
            2,
            format!(
                "IDX type code 0x{:02x} is not 0x08 (unsigned byte)",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(malformed(path, 3, "IDX file declares zero dimensions"));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(malformed(
            path,
            bytes.len(),
            format!("file ends inside the header of {ndims} dimension sizes"),
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| malformed(path, 4, "dimension sizes overflow"))?;
    let available = bytes.len() - header;
    if available < expected {
        return Err(malformed(
            path,
            bytes.len(),
            format!("truncated: header promises {expected} data bytes, file has {available}"),
        ));
    }
    if available > expected {
        return Err(malformed(
            path,
            header + expected,
            format!("{} trailing bytes after the data", available - expected),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

impl Dataset {
    /// Loads an IDX image file and its IDX label file (MNIST / Fashion-MNIST, 10 classes).
    pub fn from_idx(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Self> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let (idims, pixels) = read_idx(images)?;
        if idims.len() != 3 {
            return Err(malformed(
                images,
                3,
                format!(
                    "image file has {} dimensions, expected 3 (N x H x W)",
                    idims.len()
                ),
            ));
        }
        let (ldims, labs) = read_idx(labels)?;
        if ldims.len() != 1 {
            return Err(malformed(
                labels,
                3,
                format!("label file has {} dimensions, expected 1", ldims.len()),
            ));
        }
        if ldims[0] != idims[0] {
            return Err(malformed(
                labels,
                4,
                format!(
                    "{} labels for {} images in `{}`",
                    ldims[0],
                    idims[0],
                    images.display()
                ),
            ));
        }
        let header = 4 + 4 * ldims.len();
        if let Some(i) = labs.iter().position(|&l| l >= 10) {
            return Err(malformed(
                labels,
                header + i,
                format!("label {} is not a digit class 0..10", labs[i]),
            ));
        }
        Self::from_parts(pixels, labs, (1, idims[1], idims[2]), 10)
    }

    /// Loads the standard MNIST / Fashion-MNIST files of `split` from `dir`, accepting both
    /// `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz` (likewise `t10k-*`).
    pub fn mnist_dir(dir: impl AsRef<Path>, split: Split) -> Result<Self> {
        let dir = dir.as_ref();
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let find = |stem: String| -> PathBuf {
            let plain = dir.join(&stem);
            if plain.exists() {
                plain
            } else {
                dir.join(format!("{stem}.gz"))
            }
        };
        Self::from_idx(
            find(format!("{prefix}-images-idx3-ubyte")),
            find(format!("{prefix}-labels-idx1-ubyte")),
        )
    }

    /// Loads and concatenates CIFAR binary files (3 x 32 x 32 records after 1 label byte for
    /// CIFAR-10, 2 for CIFAR-100).
    pub fn from_cifar_files(files: &[PathBuf], labels: CifarLabels) -> Result<Self> {
        const IMAGE: usize = 3 * 32 * 32;
        let (label_bytes, label_index, classes) = match labels {
            CifarLabels::Cifar10 => (1, 0, 10),
            CifarLabels::Cifar100Coarse => (2, 0, 20),
            CifarLabels::Cifar100Fine => (2, 1, 100),
        };
        let record = label_bytes + IMAGE;
        let mut pixels = Vec::new();
        let mut labs = Vec::new();
        if files.is_empty() {
            return Err(SupernetError::invalid("files", "no CIFAR files given"));
        }
        for path in files {
            let bytes = read_file(path)?;
            if bytes.is_empty() {
                return Err(malformed(path, 0, "file is empty"));
            }
            if bytes.len() % record != 0 {
                let last = bytes.len() - bytes.len() % record;
                return Err(malformed(
                    path,
                    last,
                    format!(
                        "truncated record: {} bytes left, a record has {record}",
                        bytes.len() - last
                    ),
                ));
            }
            for (r, chunk) in bytes.chunks_exact(record).enumerate() {
                let label = chunk[label_index];
                if label as usize >= classes {
                    return Err(malformed(
                        path,
                        r * record + label_index,
                        format!("label {label} is not below {classes} classes"),
                    ));
                }
                labs.push(label);
                pixels.extend_from_slice(&chunk[label_bytes..]);
            }
        }
        Self::from_parts(pixels, labs, (3, 32, 32), classes)
    }

    /// Loads the standard CIFAR-10 (`data_batch_{1..5}.bin`, `test_batch.bin`) or CIFAR-100
    /// (`train.bin`, `test.bin`) files of `split` from `dir`.
    pub fn cifar_dir(dir: impl AsRef<Path>, split: Split, labels: CifarLabels) -> Result<Self> {
        let dir = dir.as_ref();
        let files: Vec<PathBuf> = match (labels, split) {
            (CifarLabels::Cifar10, Split::Train) => (1..=5)
                .map(|i| dir.join(format!("data_batch_{i}.bin")))
                .collect(),
            (CifarLabels::Cifar10, Split::Test) => vec![dir.join("test_batch.bin")],
            (_, Split::Train) => vec![dir.join("train.bin")],
            (_, Split::Test) => vec![dir.join("test.bin")],
        };
        Self::from_cifar_files(&files, labels)
    }
}
