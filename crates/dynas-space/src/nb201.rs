//! The NAS-Bench-201 (NATS-Bench topology) cell space: 6 edges x 5 ops, 15,625 cells.
//!
//! Gene `i` is the op on edge `i`, edges ordered `1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`, op
//! indices `0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3` (the
//! `op0..op5` columns of `nb201/nb201_hw.csv`). Decoded networks follow the CIFAR skeleton:
//! a 3x3 stem conv to 16 channels, three stages of 5 cells at 16 / 32 / 64 channels with a
//! residual reduction block between stages, global pooling and a linear classifier.
//!
//! Layer names: `stem`, `stage<s>.cell<c>.edge<t><-<f>` (one layer per edge; `<-` reads
//! "from"), `reduction<s>`, `global_pool`, `classifier`. Edge convs are ReLU-conv-BN in the
//! reference; their activation is recorded as [`Activation::Relu`].

use crate::error::{Result, SpaceError};
use crate::genotype::Genotype;
use crate::network::{Activation, Layer, Network, PoolKind, TensorShape};
use crate::space::{Dimension, SearchSpace};

/// Op names in index order.
pub const NB201_OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// `(to, from)` node pairs of the 6 edges, in gene order.
pub const NB201_EDGES: [(usize, usize); 6] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// Writes the standard arch string of six op indices (each below [`NB201_OPS`]`.len()`;
/// larger ones are written as `?`), e.g.
/// `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`.
pub fn write_arch_str(ops: &[usize; 6], out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let mut gene = 0;
    for node in 1..=3 {
        if node > 1 {
            out.write_char('+')?;
        }
        out.write_char('|')?;
        for from in 0..node {
            out.write_str(NB201_OPS.get(ops[gene]).copied().unwrap_or("?"))?;
            out.write_char('~')?;
            out.write_char(char::from(b'0' + from as u8))?;
            out.write_char('|')?;
            gene += 1;
        }
    }
    Ok(())
}

/// The six op indices of a standard arch string, without allocating (the NAS-Bench-201
/// codec; [`Nb201Space::parse_arch_str`] wraps it). A malformed string is a
/// [`SpaceError::Parse`], an unknown op name a [`SpaceError::UnknownName`].
pub fn parse_arch_ops(text: &str) -> Result<[usize; 6]> {
    let parse_error = |reason: String| SpaceError::Parse {
        input: text.to_string(),
        reason,
    };
    let mut rest = text.trim();
    let mut ops = [0; 6];
    let mut gene = 0;
    for node in 1..=3 {
        if node > 1 {
            rest = rest.strip_prefix('+').ok_or_else(|| {
                parse_error(format!("expected `+` before node {node}, found `{rest}`"))
            })?;
        }
        rest = rest
            .strip_prefix('|')
            .ok_or_else(|| parse_error(format!("node {node} group does not start with `|`")))?;
        for from in 0..node {
            let (edge, after) = rest
                .split_once('|')
                .ok_or_else(|| parse_error(format!("node {node} needs {node} inputs")))?;
            rest = after;
            let (op, source) = edge.split_once('~').ok_or_else(|| {
                parse_error(format!("edge `{edge}` of node {node} is not `op~input`"))
            })?;
            if source.parse::<usize>().ok() != Some(from) {
                return Err(parse_error(format!(
                    "edge `{edge}` of node {node} should read from node {from}"
                )));
            }
            ops[gene] =
                NB201_OPS
                    .iter()
                    .position(|o| *o == op)
                    .ok_or_else(|| SpaceError::UnknownName {
                        space: "nas-bench-201".to_string(),
                        name: op.to_string(),
                    })?;
            gene += 1;
        }
    }
    if !rest.is_empty() {
        return Err(parse_error(format!("unexpected `{rest}` after node 3")));
    }
    Ok(ops)
}

/// Cells per stage.
const CELLS_PER_STAGE: usize = 5;

/// The NAS-Bench-201 space with its network skeleton.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nb201Space {
    dimensions: Vec<Dimension>,
    resolution: usize,
    num_classes: usize,
    stem_channels: usize,
    /// `stage<s>.cell<c>.edge<t><-<f>` in decoding order, built once so decoding only clones.
    edge_names: Vec<String>,
}

impl Default for Nb201Space {
    fn default() -> Self {
        Self::new()
    }
}

impl Nb201Space {
    /// The CIFAR-10 setting: 3x32x32 input, 10 classes, 16 / 32 / 64 channels.
    pub fn new() -> Self {
        let labels: Vec<String> = NB201_OPS.iter().map(ToString::to_string).collect();
        let dimensions = NB201_EDGES
            .iter()
            .map(|(to, from)| {
                Dimension::new(format!("{to}<-{from}"), labels.clone())
                    .expect("NB201 op labels are distinct and non-empty")
            })
            .collect();
        let edge_names = (1..=3)
            .flat_map(|stage| {
                (0..CELLS_PER_STAGE).flat_map(move |cell| {
                    NB201_EDGES
                        .iter()
                        .map(move |(to, from)| format!("stage{stage}.cell{cell}.edge{to}<-{from}"))
                })
            })
            .collect();
        Self {
            edge_names,
            dimensions,
            resolution: 32,
            num_classes: 10,
            stem_channels: 16,
        }
    }

    /// The ImageNet16-120 setting: 3x16x16 input, 120 classes.
    pub fn imagenet16_120() -> Self {
        Self {
            resolution: 16,
            num_classes: 120,
            ..Self::new()
        }
    }

    /// The same space with another number of classes (100 for CIFAR-100).
    pub fn with_num_classes(mut self, num_classes: usize) -> Result<Self> {
        if num_classes == 0 {
            return Err(SpaceError::InvalidParameter {
                name: "num_classes",
                reason: "must be at least 1".to_string(),
            });
        }
        self.num_classes = num_classes;
        Ok(self)
    }

    /// The same space on `resolution` x `resolution` inputs (a multiple of 4, so both
    /// reductions halve evenly).
    pub fn with_resolution(mut self, resolution: usize) -> Result<Self> {
        if resolution == 0 || !resolution.is_multiple_of(4) {
            return Err(SpaceError::InvalidParameter {
                name: "resolution",
                reason: format!("{resolution} is not a positive multiple of 4"),
            });
        }
        self.resolution = resolution;
        Ok(self)
    }

    /// Input resolution.
    pub fn resolution(&self) -> usize {
        self.resolution
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The standard arch string, e.g.
    /// `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`.
    pub fn arch_str(&self, genotype: &Genotype) -> Result<String> {
        self.validate(genotype)?;
        let mut ops = [0; NB201_EDGES.len()];
        ops.copy_from_slice(genotype.genes());
        let mut out = String::with_capacity(96);
        // Writing to a String cannot fail.
        let _ = write_arch_str(&ops, &mut out);
        Ok(out)
    }

    /// Parses a standard arch string into a genotype.
    pub fn parse_arch_str(&self, text: &str) -> Result<Genotype> {
        Ok(Genotype::new(parse_arch_ops(text)?.to_vec()))
    }

    fn edge_layer(name: String, op: usize, shape: TensorShape) -> Layer {
        match op {
            0 => Layer::zero(name, shape),
            1 => Layer::identity(name, shape),
            2 => Layer::conv(name, shape, shape.channels, 1, 1, Activation::Relu),
            3 => Layer::conv(name, shape, shape.channels, 3, 1, Activation::Relu),
            _ => Layer::pool(name, PoolKind::Average, shape, 3, 1),
        }
    }
}

impl SearchSpace for Nb201Space {
    fn name(&self) -> &str {
        "nas-bench-201"
    }

    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    fn decode(&self, genotype: &Genotype) -> Result<Network> {
        let arch = self.arch_str(genotype)?;
        let genes = genotype.genes();
        let input = TensorShape::new(3, self.resolution, self.resolution);
        let mut layers = Vec::with_capacity(1 + 3 * CELLS_PER_STAGE * 6 + 4);
        // The stem is conv + BN without activation.
        let stem = Layer::conv("stem", input, self.stem_channels, 3, 1, Activation::None);
        let mut shape = stem.output();
        layers.push(stem);
        let mut edge_names = self.edge_names.iter();
        for stage in 1..=3 {
            if stage > 1 {
                let block = Layer::residual_block(
                    format!("reduction{}", stage - 1),
                    shape,
                    shape.channels * 2,
                    2,
                );
                shape = block.output();
                layers.push(block);
            }
            for cell in 0..CELLS_PER_STAGE {
                for (&(to, from), &op) in NB201_EDGES.iter().zip(genes) {
                    let name = match edge_names.next() {
                        Some(name) => name.clone(),
                        None => format!("stage{stage}.cell{cell}.edge{to}<-{from}"),
                    };
                    layers.push(Self::edge_layer(name, op, shape));
                }
            }
        }
        let pool = Layer::global_avg_pool("global_pool", shape);
        shape = pool.output();
        layers.push(pool);
        layers.push(Layer::linear(
            "classifier",
            shape.channels,
            self.num_classes,
        ));
        Ok(Network::new(input, layers)
            .with_arch_id(arch)
            .with_genes(genotype.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use approx::assert_relative_eq;

    use super::*;

    const NB201_CSV: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/nb201/nb201_hw.csv"
    );

    #[test]
    fn every_csv_row_round_trips_between_arch_string_and_op_columns() {
        let text = std::fs::read_to_string(NB201_CSV).expect("read nb201_hw.csv");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("column {name} missing"))
        };
        let arch_col = column("arch_str");
        let op_cols: Vec<usize> = (0..6).map(|i| column(&format!("op{i}"))).collect();
        let space = Nb201Space::new();
        let mut seen = HashSet::new();
        for (row, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let from_ops = Genotype::new(
                op_cols
                    .iter()
                    .map(|&c| fields[c].parse().expect("op index"))
                    .collect(),
            );
            let parsed = space.parse_arch_str(fields[arch_col]).expect("parses");
            assert_eq!(parsed, from_ops, "row {row}");
            assert_eq!(space.arch_str(&from_ops).expect("valid"), fields[arch_col]);
            seen.insert(parsed);
        }
        assert_eq!(seen.len(), 15_625);
    }

    #[test]
    fn decode_tags_the_arch_string_and_has_the_published_flops() {
        let space = Nb201Space::new();
        // Row 1 of the csv.
        let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
        let genotype = space.parse_arch_str(arch).expect("parses");
        assert_eq!(genotype.genes(), &[3, 3, 4, 1, 3, 1]);
        let network = space.decode(&genotype).expect("decodes");
        assert_eq!(network.arch_id.as_deref(), Some(arch));
        assert_eq!(network.layers.len(), 1 + 90 + 2 + 2);
        assert_eq!(network.layers[1].name, "stage1.cell0.edge1<-0");
        assert_eq!(network.output().channels, 10);
        // NATS-Bench CIFAR-10 FLOPs range: 7.78 M (all none) to 220.11 M (all 3x3 convs).
        let smallest = space.decode(&space.smallest()).expect("decodes");
        assert_relative_eq!(smallest.macs() as f64 / 1e6, 7.78, max_relative = 0.01);
        let all_conv = space.decode(&Genotype::new(vec![3; 6])).expect("decodes");
        assert_relative_eq!(all_conv.macs() as f64 / 1e6, 220.11, max_relative = 0.01);
        // ... and 0.073 M / 1.53 M parameters (counting BN scale and shift).
        assert_relative_eq!(smallest.params() as f64 / 1e6, 0.073, max_relative = 0.05);
        assert_relative_eq!(all_conv.params() as f64 / 1e6, 1.53, max_relative = 0.05);
    }

    #[test]
    fn malformed_arch_strings_are_typed_errors() {
        let space = Nb201Space::new();
        for bad in [
            "",
            "|none~0|+|none~0|none~1|",
            "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "|none~0|+|none~0|+|none~0|none~1|none~2|",
            "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
            "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",
        ] {
            assert!(
                matches!(space.parse_arch_str(bad), Err(SpaceError::Parse { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            space.parse_arch_str("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
            Err(SpaceError::UnknownName {
                space: "nas-bench-201".into(),
                name: "conv".into()
            })
        );
        assert!(matches!(
            space.arch_str(&Genotype::new(vec![5, 0, 0, 0, 0, 0])),
            Err(SpaceError::IndexOutOfRange { index: 5, .. })
        ));
    }

    #[test]
    fn settings_change_the_skeleton() {
        let space = Nb201Space::imagenet16_120();
        let network = space.decode(&space.largest()).expect("decodes");
        assert_eq!(network.input, TensorShape::new(3, 16, 16));
        assert_eq!(network.output().channels, 120);
        let cifar100 = Nb201Space::new().with_num_classes(100).expect("valid");
        assert_eq!(cifar100.num_classes(), 100);
        assert!(Nb201Space::new().with_resolution(30).is_err());
        assert!(Nb201Space::new().with_num_classes(0).is_err());
    }
}
