//! The FBNet space of HW-NAS-Bench: 22 searchable layers x 9 block choices.
//!
//! Gene `i` (dimension `layer<i>`) is the block of layer `i`, indices as in HW-NAS-Bench:
//! `0 k3_e1, 1 k3_e1_g2, 2 k3_e3, 3 k3_e6, 4 k5_e1, 5 k5_e1_g2, 6 k5_e3, 7 k5_e6, 8 skip`
//! (the digits of the `ops` column of `fbnet/fbnet_5000_archs_cifar100.csv`). Layers have
//! 16, 24 x4, 32 x4, 64 x4, 112 x4, 184 x4 and 352 output channels.
//!
//! **Layer names are HW-NAS-Bench lookup-table keys** (`fbnet/hwnasbench_fbnet_lut.json`), so a
//! cost model sums the table over `network.layers` by name: the stem
//! (`ConvNorm_H32_W32_Cin3_Cout16_kernel3_stride1_group1`), one block per searchable layer
//! (`ConvBlock_H.._W.._Cin.._Cout.._exp.._kernel.._stride.._group..` or `Skip_H.._W.._Cin.._Cout.._stride..`),
//! the head conv (`ConvNorm_..._kernel1_...`), the pooling (`AvgP_...`) and the classifier
//! (`FC_Cin.._Cout..`). Names repeat when the same block recurs at the same shape.
//!
//! Blocks are FBNet's: 1x1 (grouped) expansion conv kept even at ratio 1, depthwise k x k,
//! 1x1 (grouped) projection, residual when shapes match. A `skip` that keeps the shape is an
//! [`crate::OpKind::Identity`]; one that changes channels or stride is a 1x1 conv + BN with
//! that stride (the MACs of HW-NAS-Bench's factorized reduce).
//!
//! Choice indices keep HW-NAS-Bench's order, which is not cheapest-first: here
//! [`SearchSpace::smallest`] and [`SearchSpace::largest`] are just all-`k3_e1` and all-`skip`.

use crate::error::{Result, SpaceError};
use crate::genotype::Genotype;
use crate::network::{Activation, Layer, Network, TensorShape};
use crate::space::{Dimension, SearchSpace};

/// Number of searchable layers.
pub const FBNET_LAYERS: usize = 22;

/// Block names in index order.
pub const FBNET_BLOCKS: [&str; 9] = [
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
];

/// `(kernel, expand ratio, groups)` of each block index; `None` for `skip`.
const BLOCK_SHAPES: [Option<(usize, usize, usize)>; 9] = [
    Some((3, 1, 1)),
    Some((3, 1, 2)),
    Some((3, 3, 1)),
    Some((3, 6, 1)),
    Some((5, 1, 1)),
    Some((5, 1, 2)),
    Some((5, 3, 1)),
    Some((5, 6, 1)),
    None,
];

/// Output channels of the 22 searchable layers.
pub const FBNET_CHANNELS: [usize; FBNET_LAYERS] = [
    16, 24, 24, 24, 24, 32, 32, 32, 32, 64, 64, 64, 64, 112, 112, 112, 112, 184, 184, 184, 184, 352,
];

/// Strides of the 22 layers at 224x224 (the stem strides too).
const IMAGENET_STRIDES: [usize; FBNET_LAYERS] = [
    1, 2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1,
];

/// Strides of the 22 layers at 32x32 (stem and the first stage keep the resolution).
const CIFAR_STRIDES: [usize; FBNET_LAYERS] = [
    1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1,
];

/// The HW-NAS-Bench FBNet space in one of its dataset settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FbNetSpace {
    name: &'static str,
    dimensions: Vec<Dimension>,
    resolution: usize,
    stem_stride: usize,
    strides: [usize; FBNET_LAYERS],
    head_channels: usize,
    num_classes: usize,
    /// Every decoded layer for every block choice: `layers[i][b]` is layer `i` with block `b`
    /// (shapes do not depend on other layers' choices), so decoding only clones.
    layers: Vec<Vec<Layer>>,
    /// Stem, head conv, pooling and classifier.
    fixed: [Layer; 4],
}

impl FbNetSpace {
    fn with_setting(
        name: &'static str,
        resolution: usize,
        stem_stride: usize,
        strides: [usize; FBNET_LAYERS],
        head_channels: usize,
        num_classes: usize,
    ) -> Self {
        let labels: Vec<String> = FBNET_BLOCKS.iter().map(ToString::to_string).collect();
        let dimensions = (0..FBNET_LAYERS)
            .map(|i| {
                Dimension::new(format!("layer{i}"), labels.clone())
                    .expect("FBNet block labels are distinct and non-empty")
            })
            .collect();
        let input = TensorShape::new(3, resolution, resolution);
        let stem = Layer::conv(
            format!(
                "ConvNorm_H{resolution}_W{resolution}_Cin3_Cout16_kernel3_stride{stem_stride}_group1"
            ),
            input,
            16,
            3,
            stem_stride,
            Activation::Relu,
        );
        let mut shape = stem.output();
        let mut layers = Vec::with_capacity(FBNET_LAYERS);
        for (&out, &stride) in FBNET_CHANNELS.iter().zip(&strides) {
            let choices: Vec<Layer> = (0..FBNET_BLOCKS.len())
                .map(|b| Self::block(shape, out, stride, b))
                .collect();
            shape = choices[0].output();
            layers.push(choices);
        }
        let (h, w, c) = (shape.height, shape.width, shape.channels);
        let head = head_channels;
        let head_conv = Layer::conv(
            format!("ConvNorm_H{h}_W{w}_Cin{c}_Cout{head}_kernel1_stride1_group1"),
            shape,
            head,
            1,
            1,
            Activation::Relu,
        );
        let pool = Layer::global_avg_pool(
            format!("AvgP_H{h}_W{w}_Cin{head}_Cout{head}_kernel{h}_stride1"),
            head_conv.output(),
        );
        let classifier =
            Layer::linear(format!("FC_Cin{head}_Cout{num_classes}"), head, num_classes);
        Self {
            name,
            dimensions,
            resolution,
            stem_stride,
            strides,
            head_channels,
            num_classes,
            layers,
            fixed: [stem, head_conv, pool, classifier],
        }
    }

    /// CIFAR-100 (32x32, head conv to 1504 channels, 100 classes).
    pub fn cifar100() -> Self {
        Self::with_setting("fbnet-cifar100", 32, 1, CIFAR_STRIDES, 1504, 100)
    }

    /// CIFAR-10 (as CIFAR-100 with 10 classes).
    pub fn cifar10() -> Self {
        Self::with_setting("fbnet-cifar10", 32, 1, CIFAR_STRIDES, 1504, 10)
    }

    /// ImageNet (224x224, head conv to 1984 channels, 1000 classes).
    pub fn imagenet() -> Self {
        Self::with_setting("fbnet-imagenet", 224, 2, IMAGENET_STRIDES, 1984, 1000)
    }

    /// Input resolution.
    pub fn resolution(&self) -> usize {
        self.resolution
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Searchable layer `layer` (0..22) with block choice `block` (0..9, [`FBNET_BLOCKS`]
    /// order), as [`SearchSpace::decode`] places it; its name is its HW-NAS-Bench LUT key.
    pub fn block_layer(&self, layer: usize, block: usize) -> Option<&Layer> {
        self.layers.get(layer)?.get(block)
    }

    /// The stem conv, the first layer of every decoded network.
    pub fn stem(&self) -> &Layer {
        &self.fixed[0]
    }

    /// The head conv, pooling and classifier, the last three layers of every decoded network.
    pub fn tail(&self) -> &[Layer] {
        &self.fixed[1..]
    }

    /// The block indices of a genotype of this space (checked: 22 genes, each 0..9).
    pub fn blocks(&self, genotype: &Genotype) -> Result<[usize; FBNET_LAYERS]> {
        self.validate(genotype)?;
        let mut blocks = [0; FBNET_LAYERS];
        blocks.copy_from_slice(genotype.genes());
        Ok(blocks)
    }

    /// The 22 block digits of a genotype, as in HW-NAS-Bench's `ops` column.
    pub fn ops_string(&self, genotype: &Genotype) -> Result<String> {
        self.validate(genotype)?;
        Ok(genotype
            .genes()
            .iter()
            .map(|&g| char::from(b'0' + g as u8))
            .collect())
    }

    /// Parses block digits `0`-`8`. The published csv stores `ops` as an integer, so leading
    /// zeros (`k3_e1` in the first layers) may be missing: shorter strings are left-padded
    /// with `0` to 22 digits.
    pub fn parse_ops(&self, text: &str) -> Result<Genotype> {
        let digits = text.trim();
        let parse_error = |reason: String| SpaceError::Parse {
            input: text.to_string(),
            reason,
        };
        if digits.is_empty() || digits.len() > FBNET_LAYERS {
            return Err(parse_error(format!(
                "expected 1 to {FBNET_LAYERS} block digits, found {}",
                digits.len()
            )));
        }
        let mut genes = vec![0; FBNET_LAYERS - digits.len()];
        for (i, c) in digits.chars().enumerate() {
            match c.to_digit(10) {
                Some(d) if (d as usize) < FBNET_BLOCKS.len() => genes.push(d as usize),
                _ => {
                    return Err(parse_error(format!(
                        "character {i} `{c}` is not a block digit 0-8"
                    )));
                }
            }
        }
        Ok(Genotype::new(genes))
    }

    fn block(shape: TensorShape, out: usize, stride: usize, block: usize) -> Layer {
        let (h, w, cin) = (shape.height, shape.width, shape.channels);
        match BLOCK_SHAPES.get(block).copied().flatten() {
            Some((kernel, expand, groups)) => Layer::mbconv(
                format!(
                    "ConvBlock_H{h}_W{w}_Cin{cin}_Cout{out}_exp{expand}_kernel{kernel}_stride{stride}_group{groups}"
                ),
                shape,
                out,
                cin * expand,
                kernel,
                stride,
                None,
                Activation::Relu,
            )
            .with_groups(groups)
            .with_expansion_conv(),
            None => {
                let name = format!("Skip_H{h}_W{w}_Cin{cin}_Cout{out}_stride{stride}");
                if cin == out && stride == 1 {
                    Layer::identity(name, shape)
                } else {
                    Layer::conv(name, shape, out, 1, stride, Activation::None)
                }
            }
        }
    }
}

impl SearchSpace for FbNetSpace {
    fn name(&self) -> &str {
        self.name
    }

    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    fn decode(&self, genotype: &Genotype) -> Result<Network> {
        let ops = self.ops_string(genotype)?;
        let input = TensorShape::new(3, self.resolution, self.resolution);
        let [stem, head_conv, pool, classifier] = &self.fixed;
        let mut layers = Vec::with_capacity(FBNET_LAYERS + 4);
        layers.push(stem.clone());
        for (choices, &block) in self.layers.iter().zip(genotype.genes()) {
            layers.push(choices[block].clone());
        }
        layers.extend([head_conv.clone(), pool.clone(), classifier.clone()]);
        Ok(Network::new(input, layers)
            .with_arch_id(ops)
            .with_genes(genotype.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use approx::assert_relative_eq;

    use super::*;
    use crate::network::OpKind;
    use crate::seeded_rng;

    const LUT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/fbnet/hwnasbench_fbnet_lut.json"
    );
    const ARCHS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/fbnet/fbnet_5000_archs_cifar100.csv"
    );

    type Lut = HashMap<String, HashMap<String, f64>>;

    fn lut() -> Lut {
        let text = std::fs::read_to_string(LUT).expect("read the FBNet LUT");
        serde_json::from_str(&text).expect("parse the FBNet LUT")
    }

    #[test]
    fn lut_sums_over_layer_names_reproduce_the_published_csv() {
        let lut = lut();
        let text = std::fs::read_to_string(ARCHS).expect("read the FBNet csv");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let metrics = [
            "raspi4_latency",
            "pixel3_latency",
            "eyeriss_latency",
            "fpga_latency",
        ];
        let columns: Vec<usize> = metrics
            .iter()
            .map(|m| {
                header
                    .iter()
                    .position(|h| *h == format!("hwnb_{m}"))
                    .expect("metric column")
            })
            .collect();
        let space = FbNetSpace::cifar100();
        let mut rows = 0;
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            let genotype = space.parse_ops(fields[0]).expect("ops parse");
            let network = space.decode(&genotype).expect("decodes");
            assert_eq!(network.layers.len(), 1 + FBNET_LAYERS + 3);
            for (metric, &column) in metrics.iter().zip(&columns) {
                let table = &lut[*metric];
                let sum: f64 = network
                    .layers
                    .iter()
                    .map(|l| {
                        *table
                            .get(&l.name)
                            .unwrap_or_else(|| panic!("{} not in the LUT", l.name))
                    })
                    .sum();
                let published: f64 = fields[column].parse().expect("metric value");
                assert_relative_eq!(sum, published, max_relative = 1e-4);
            }
            rows += 1;
        }
        assert_eq!(rows, 5000);
    }

    #[test]
    fn imagenet_and_cifar10_layer_names_are_lut_keys() {
        let lut = lut();
        let table = &lut["raspi4_latency"];
        let mut rng = seeded_rng(5);
        for space in [FbNetSpace::imagenet(), FbNetSpace::cifar10()] {
            for _ in 0..100 {
                let network = space.decode(&space.sample(&mut rng)).expect("decodes");
                for layer in &network.layers {
                    assert!(table.contains_key(&layer.name), "{} missing", layer.name);
                }
            }
        }
    }

    #[test]
    fn ops_strings_round_trip_and_reject_bad_digits() {
        let space = FbNetSpace::cifar100();
        let genotype = space.parse_ops("7818488874147327324245").expect("parses");
        assert_eq!(
            space.ops_string(&genotype).expect("valid"),
            "7818488874147327324245"
        );
        let short = space.parse_ops("515258457467724705141").expect("parses");
        assert_eq!(
            space.ops_string(&short).expect("valid"),
            "0515258457467724705141"
        );
        for bad in ["", "9", "78184888741473273242451", "78x8"] {
            assert!(
                matches!(space.parse_ops(bad), Err(SpaceError::Parse { .. })),
                "{bad}"
            );
        }
        let network = space.decode(&genotype).expect("decodes");
        assert_eq!(network.arch_id.as_deref(), Some("7818488874147327324245"));
    }

    #[test]
    fn blocks_count_grouped_pointwise_convs_and_skips() {
        let space = FbNetSpace::cifar100();
        // Layer 0 is k3_e1_g2 on 16x32x32: grouped 1x1 16->16, dw 3x3, grouped 1x1 16->16.
        let mut genes = vec![8; FBNET_LAYERS];
        genes[0] = 1;
        let network = space.decode(&Genotype::new(genes)).expect("decodes");
        let block = &network.layers[1];
        let hw = 32 * 32;
        assert_eq!(
            block.macs(),
            hw * 16 * 16 / 2 + hw * 16 * 9 + hw * 16 * 16 / 2
        );
        // Layer 1 skip changes 16 -> 24 channels: a 1x1 conv; layer 2 skip is an identity.
        assert_eq!(network.layers[2].kind, OpKind::Conv);
        assert_eq!(network.layers[2].macs(), hw * 16 * 24);
        assert_eq!(network.layers[3].kind, OpKind::Identity);
        assert!(
            network.layers[3]
                .name
                .starts_with("Skip_H32_W32_Cin24_Cout24")
        );
        let output = network.output();
        assert_eq!(output.channels, 100);
        let smallest = space.decode(&space.smallest()).expect("decodes");
        let largest = space.decode(&space.largest()).expect("decodes");
        let all_k5_e6 = space
            .decode(&Genotype::new(vec![7; FBNET_LAYERS]))
            .expect("decodes");
        assert!(largest.macs() < smallest.macs(), "all-skip is the cheapest");
        assert!(smallest.macs() < all_k5_e6.macs());
    }

    #[test]
    fn typed_accessors_rebuild_the_decoded_network() {
        let space = FbNetSpace::imagenet();
        let mut rng = seeded_rng(11);
        let genotype = space.sample(&mut rng);
        let network = space.decode(&genotype).expect("decodes");
        let blocks = space.blocks(&genotype).expect("valid");
        let mut names = vec![space.stem().name.clone()];
        for (i, &b) in blocks.iter().enumerate() {
            names.push(space.block_layer(i, b).expect("in range").name.clone());
        }
        names.extend(space.tail().iter().map(|l| l.name.clone()));
        let decoded: Vec<String> = network.layers.iter().map(|l| l.name.clone()).collect();
        assert_eq!(names, decoded);
        assert!(space.block_layer(FBNET_LAYERS, 0).is_none());
        assert!(space.block_layer(0, FBNET_BLOCKS.len()).is_none());
        assert!(space.blocks(&Genotype::new(vec![9; FBNET_LAYERS])).is_err());
    }
}
