//! Image classification data: MNIST / Fashion-MNIST IDX files (plain or gzip) and the CIFAR-10 /
//! CIFAR-100 binary format, a held-out validation split, augmentation and batching.
//!
//! Images stay as `u8` in host memory; batches are built as normalised `f32` tensors on the
//! requested device. Every random choice (shuffling, crops, flips, the split) comes from a
//! seeded [`DynasRng`], so runs are reproducible.

use std::io::Read;
use std::path::{Path, PathBuf};

use dynas_space::DynasRng;
use rand::Rng;
use rand::seq::SliceRandom;
use tch::{Device, Kind, Tensor};

use crate::error::{Result, SupernetError};

/// An in-memory labelled image set, `u8` pixels in `C x H x W` order per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    channels: usize,
    height: usize,
    width: usize,
    classes: usize,
}

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
    /// A dataset from raw parts; checks sizes and labels.
    pub fn from_parts(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        shape: (usize, usize, usize),
        classes: usize,
    ) -> Result<Self> {
        let (channels, height, width) = shape;
        let per = channels * height * width;
        if per == 0 {
            return Err(SupernetError::invalid(
                "shape",
                "images must have no zero dimension",
            ));
        }
        if pixels.len() != per * labels.len() {
            return Err(SupernetError::invalid(
                "pixels",
                format!(
                    "{} pixel bytes for {} labels of {per} bytes each",
                    pixels.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
            return Err(SupernetError::invalid(
                "labels",
                format!("label {bad} is not below the {classes} classes"),
            ));
        }
        Ok(Self {
            pixels,
            labels,
            channels,
            height,
            width,
            classes,
        })
    }

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

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Channels, height and width of every image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The images with these indices, in this order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let per = self.channels * self.height * self.width;
        let mut pixels = Vec::with_capacity(per * indices.len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * per..(i + 1) * per]);
            labels.push(self.labels[i]);
        }
        Self {
            pixels,
            labels,
            ..*self
        }
    }

    /// Splits off `validation` randomly chosen images as a held-out validation set; returns
    /// `(train, validation)`.
    pub fn split_validation(&self, validation: usize, rng: &mut DynasRng) -> Result<(Self, Self)> {
        if validation == 0 || validation >= self.len() {
            return Err(SupernetError::invalid(
                "validation",
                format!(
                    "validation size {validation} must be in 1..{} (dataset size)",
                    self.len()
                ),
            ));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(rng);
        let (val, train) = order.split_at(validation);
        let (mut train, mut val) = (train.to_vec(), val.to_vec());
        train.sort_unstable();
        val.sort_unstable();
        Ok((self.subset(&train), self.subset(&val)))
    }

    /// Per-channel mean and standard deviation of the pixels scaled to `[0, 1]`.
    pub fn channel_stats(&self) -> Normalization {
        let plane = self.height * self.width;
        let per = self.channels * plane;
        let mut sum = vec![0f64; self.channels];
        let mut sq = vec![0f64; self.channels];
        for image in self.pixels.chunks_exact(per) {
            for c in 0..self.channels {
                for &p in &image[c * plane..(c + 1) * plane] {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let n = (self.len() * plane).max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, &m)| ((q / n - (m as f64) * (m as f64)).max(1e-12).sqrt()) as f32)
            .collect();
        Normalization { mean, std }
    }

    /// Builds one batch from `indices`, applying `augment` with `rng`.
    pub fn batch(
        &self,
        indices: &[usize],
        norm: &Normalization,
        augment: &Augmentation,
        rng: &mut DynasRng,
        device: Device,
    ) -> Batch {
        let (c, h, w) = (self.channels, self.height, self.width);
        let per = c * h * w;
        let mut out = vec![0f32; indices.len() * per];
        let pad = augment.pad as i64;
        for (b, &i) in indices.iter().enumerate() {
            let image = &self.pixels[i * per..(i + 1) * per];
            let (dy, dx) = if augment.pad > 0 {
                (rng.random_range(-pad..=pad), rng.random_range(-pad..=pad))
            } else {
                (0, 0)
            };
            let flip = augment.horizontal_flip && rng.random_bool(0.5);
            let dst = &mut out[b * per..(b + 1) * per];
            for ch in 0..c {
                let (m, s) = (norm.mean[ch], norm.std[ch]);
                let zero = -m / s;
                for y in 0..h {
                    let sy = y as i64 + dy;
                    for x in 0..w {
                        let xx = if flip { w - 1 - x } else { x };
                        let sx = xx as i64 + dx;
                        let v = if sy < 0 || sx < 0 || sy >= h as i64 || sx >= w as i64 {
                            zero
                        } else {
                            let p = image[ch * h * w + sy as usize * w + sx as usize];
                            (p as f32 / 255.0 - m) / s
                        };
                        dst[ch * h * w + y * w + x] = v;
                    }
                }
            }
        }
        let images = Tensor::from_slice(&out)
            .reshape([indices.len() as i64, c as i64, h as i64, w as i64])
            .to_device(device);
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        let labels = Tensor::from_slice(&labels).to_device(device);
        Batch { images, labels }
    }

    /// Batches of `batch_size` over the whole set (the last one may be smaller), shuffled with
    /// `rng` when `shuffle` is set.
    pub fn batches<'a>(
        &'a self,
        batch_size: usize,
        shuffle: bool,
        norm: &'a Normalization,
        augment: Augmentation,
        rng: &'a mut DynasRng,
        device: Device,
    ) -> Batches<'a> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if shuffle {
            order.shuffle(rng);
        }
        Batches {
            data: self,
            order,
            position: 0,
            batch_size: batch_size.max(1),
            norm,
            augment,
            rng,
            device,
        }
    }
}

/// How a model's training images were drawn from a training split: `validation_images`
/// randomly chosen images (seeded by `seed`) held out, then the first `train_images` of the
/// rest. Saved beside a model so that a later run that fine-tunes or ranks on "validation"
/// images provably uses images the model never saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitRecord {
    /// Images held out for validation.
    pub validation_images: usize,
    /// Seed of the hold-out draw.
    pub seed: u64,
    /// Training images taken (a prefix of the rest; fewer if the split has fewer).
    pub train_images: usize,
}

impl SplitRecord {
    /// Splits `full` as recorded; returns `(train, validation)`.
    pub fn split(&self, full: &Dataset) -> Result<(Dataset, Dataset)> {
        let mut rng = dynas_space::seeded_rng(self.seed);
        let (rest, validation) = full.split_validation(self.validation_images, &mut rng)?;
        let indices: Vec<usize> = (0..rest.len().min(self.train_images)).collect();
        Ok((rest.subset(&indices), validation))
    }

    /// `<model>.split.json`: where [`SplitRecord::save_beside`] writes.
    pub fn path_beside(model: &Path) -> PathBuf {
        let mut name = model.as_os_str().to_owned();
        name.push(".split.json");
        name.into()
    }

    /// Writes the record beside `model` (atomically).
    pub fn save_beside(&self, model: &Path) -> Result<()> {
        let path = Self::path_beside(model);
        let text = serde_json::to_string_pretty(self).map_err(|e| SupernetError::Json {
            path: path.clone(),
            source: e,
        })?;
        crate::checkpoint::write_atomic(&path, |tmp| std::fs::write(tmp, text))
    }

    /// The record beside `model`, `None` when there is none.
    pub fn load_beside(model: &Path) -> Result<Option<Self>> {
        let path = Self::path_beside(model);
        let text = match dynas_space::files::read_input_text(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SupernetError::io(path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| SupernetError::Json { path, source: e })
    }

    /// Checks that this split's validation images were held out of the training of a model
    /// trained under `trained` (recorded in `path`): same hold-out size and seed. The number
    /// of training images may differ: both take a prefix of the same rest.
    pub fn check_held_out_from(&self, trained: &SplitRecord, path: &Path) -> Result<()> {
        let field = if self.validation_images != trained.validation_images {
            "validation_images"
        } else if self.seed != trained.seed {
            "seed"
        } else {
            return Ok(());
        };
        Err(SupernetError::Checkpoint {
            path: path.to_path_buf(),
            field: field.into(),
            reason: format!(
                "the model was trained with {} validation images held out (seed {}); this run \
                 holds out {} (seed {}), so its validation images may include training images",
                trained.validation_images, trained.seed, self.validation_images, self.seed
            ),
        })
    }
}

/// Per-channel normalisation `(x / 255 - mean) / std`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Channel means of the pixels scaled to `[0, 1]`.
    pub mean: Vec<f32>,
    /// Channel standard deviations.
    pub std: Vec<f32>,
}

/// Training-time augmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Augmentation {
    /// Random-crop padding in pixels (0 disables the crop): the image is shifted by up to
    /// `pad` pixels in each direction and the border filled with zeros (black).
    pub pad: usize,
    /// Flip horizontally with probability 1/2.
    pub horizontal_flip: bool,
}

impl Augmentation {
    /// No augmentation (evaluation).
    pub const NONE: Self = Self {
        pad: 0,
        horizontal_flip: false,
    };
}

/// One batch: normalised `f32` images `[B, C, H, W]` and `i64` labels `[B]`.
#[derive(Debug)]
pub struct Batch {
    /// Images.
    pub images: Tensor,
    /// Class labels.
    pub labels: Tensor,
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The images as `f32` on their device (convenience for callers that change kinds).
    pub fn images_kind(&self, kind: Kind) -> Tensor {
        self.images.to_kind(kind)
    }
}

/// Iterator over the batches of a [`Dataset`].
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    position: usize,
    batch_size: usize,
    norm: &'a Normalization,
    augment: Augmentation,
    rng: &'a mut DynasRng,
    device: Device,
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.position >= self.order.len() {
            return None;
        }
        let end = (self.position + self.batch_size).min(self.order.len());
        let indices = self.order[self.position..end].to_vec();
        self.position = end;
        Some(
            self.data
                .batch(&indices, self.norm, &self.augment, self.rng, self.device),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynas_space::seeded_rng;
    use std::io::Write;

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
}
