//! Image classification data: MNIST / Fashion-MNIST IDX files (plain or gzip) and the CIFAR-10 /
//! CIFAR-100 binary format, a held-out validation split, augmentation and batching.
//!
//! Images stay as `u8` in host memory; batches are built as normalised `f32` tensors on the
//! requested device. Every random choice (shuffling, crops, flips, the split) comes from a
//! seeded [`DynasRng`], so runs are reproducible.

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

mod readers;
mod split;
pub use readers::{CifarLabels, Split, read_idx};
pub use split::SplitRecord;

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
mod tests;
