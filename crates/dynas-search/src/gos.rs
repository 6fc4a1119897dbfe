//! GOS operator replacement: adapt a *given* network by swapping operators for cheaper ones
//! derived from their mathematical form ([`dynas_space::opexpr`]).
//!
//! A convolution `y[co,oh,ow] = sum_{ci,kh,kw} W[co,ci,kh,kw] x[ci, s*oh+kh-p, s*ow+kw-p]`
//! reduces over `(ci, kh, kw)`. A [`Factorisation`] splits that reduction into two stages: the
//! first reduces some of the indices into an intermediate of `width` channels, the second
//! reduces the rest. Enumerating the splits within bounds ([`candidates`]) gives, among
//! others, the classic rewrites:
//!
//! | replacement | first stage | second stage | weight initialisation |
//! |---|---|---|---|
//! | depthwise separable | depthwise k x k | 1 x 1 | per input channel, rank-1 SVD of `W[:, ci]` as `[co, kh*kw]` (exact when separable) |
//! | spatially separable, rank r | k x 1, `ci -> r` | 1 x k, `r -> co` | rank-r SVD of `W` as `[(ci,kh), (co,kw)]` |
//! | low-rank bottleneck, rank r | k x k, `ci -> r` | 1 x 1, `r -> co` | rank-r SVD of `W` as `[co, (ci,kh,kw)]` |
//! | 1 x 1 then k x k, rank r | 1 x 1, `ci -> r` | k x k, `r -> co` | rank-r SVD of `W` as `[(co,kh,kw), ci]` |
//! | pointwise then depthwise | 1 x 1 | depthwise k x k | per output channel, rank-1 SVD of `W[co]` as `[kh*kw, ci]` |
//!
//! Two replacements are not factorisations but constrained approximations:
//! [`Replacement::GroupedShuffle`] (a grouped conv initialised from the block-diagonal part of
//! `W`, whose output channels are then shuffled across groups, so that each original output
//! channel keeps its place and sees one group of inputs) and [`Replacement::Dilated`] (a
//! smaller kernel whose taps, `dilation` apart, sample `W` and keep its receptive field).
//! Dense layers get [`Replacement::LowRankDense`] (rank-r SVD of `W`).
//!
//! The original's bias, batch norm and activation move to the second stage; the first stage
//! is linear, so a factorisation of rank at least the reshaped kernel's rank is exact.
//!
//! [`GosSpace`] has one dimension per replaceable unit (the convolutions of conv layers and
//! residual blocks, and dense layers), choices ordered cheapest first with `keep` last.
//! [`GosProblem`] searches it for latency x accuracy proxy with any strategy, latency from a
//! [`GosLut`] measured on the host or from any [`CostModel`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use dynas_cost::{CostModel, OperatingPoint};
use dynas_space::opexpr::Branch;
use dynas_space::{
    CustomCounts, Dimension, Genotype, Layer, LayerExpr, Network, OpExpr, OpKind, SearchSpace,
    SpaceError,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::problem::{Evaluation, Objective, Problem};

/// How the channel reduction is split between the two stages of a [`Factorisation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChannelSplit {
    /// Both stages mix channels through an intermediate of this many channels (a bottleneck).
    Bottleneck(usize),
    /// The first stage is depthwise (keeps the input channels); the second mixes them.
    FirstDepthwise,
    /// The first stage mixes the channels into the output channels; the second is depthwise.
    SecondDepthwise,
}

/// A two-stage split of a convolution's reduction over `(ci, kh, kw)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Factorisation {
    /// Whether the first stage reduces the kernel's height (else the second does).
    pub first_height: bool,
    /// Whether the first stage reduces the kernel's width (else the second does).
    pub first_width: bool,
    /// How the channel reduction is split.
    pub channels: ChannelSplit,
}

impl Factorisation {
    /// Depthwise k x k, then 1 x 1.
    pub const fn depthwise_separable() -> Self {
        Self {
            first_height: true,
            first_width: true,
            channels: ChannelSplit::FirstDepthwise,
        }
    }

    /// k x 1 to `rank` channels, then 1 x k.
    pub const fn spatially_separable(rank: usize) -> Self {
        Self {
            first_height: true,
            first_width: false,
            channels: ChannelSplit::Bottleneck(rank),
        }
    }

    /// k x k to `rank` channels, then 1 x 1.
    pub const fn low_rank(rank: usize) -> Self {
        Self {
            first_height: true,
            first_width: true,
            channels: ChannelSplit::Bottleneck(rank),
        }
    }

    /// Kernels `(kh, kw)` of the two stages for an original `(kh, kw)` kernel.
    pub fn kernels(&self, (kh, kw): (usize, usize)) -> [(usize, usize); 2] {
        let pick = |first: bool, k: usize| if first { (k, 1) } else { (1, k) };
        let (h1, h2) = pick(self.first_height, kh);
        let (w1, w2) = pick(self.first_width, kw);
        [(h1, w1), (h2, w2)]
    }

    fn label(&self) -> String {
        if *self == Self::depthwise_separable() {
            return "dwsep".to_string();
        }
        let axes = |h: bool, w: bool| {
            let mut s = String::new();
            if h {
                s.push('h');
            }
            if w {
                s.push('w');
            }
            s
        };
        let first = axes(self.first_height, self.first_width);
        let second = axes(!self.first_height, !self.first_width);
        match self.channels {
            ChannelSplit::Bottleneck(r) if self.first_height && self.first_width => {
                format!("lowrank_r{r}")
            }
            ChannelSplit::Bottleneck(r) if self.first_height && !self.first_width => {
                format!("kx1_1xk_r{r}")
            }
            ChannelSplit::Bottleneck(r) => format!("fac_c{first}_c{second}_r{r}"),
            ChannelSplit::FirstDepthwise => format!("fac_d{first}_c{second}"),
            ChannelSplit::SecondDepthwise => format!("fac_c{first}_d{second}"),
        }
    }
}

/// One way to compute (an approximation of) a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Replacement {
    /// The original operator.
    Keep,
    /// A two-stage factorisation of the reduction.
    Factorised(Factorisation),
    /// A grouped convolution followed by a channel shuffle.
    GroupedShuffle {
        /// Number of groups.
        groups: usize,
    },
    /// A smaller kernel with its taps `dilation` apart, covering the same receptive field.
    Dilated {
        /// New kernel size.
        kernel: usize,
        /// Dilation.
        dilation: usize,
    },
    /// A dense layer factorised through `rank` features.
    LowRankDense {
        /// Inner features.
        rank: usize,
    },
}

impl fmt::Display for Replacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keep => f.write_str("keep"),
            Self::Factorised(x) => f.write_str(&x.label()),
            Self::GroupedShuffle { groups } => write!(f, "group{groups}_shuffle"),
            Self::Dilated { kernel, dilation } => write!(f, "k{kernel}_dil{dilation}"),
            Self::LowRankDense { rank } => write!(f, "dense_r{rank}"),
        }
    }
}

/// Whether `expr` is a unit GOS can replace: a dense (ungrouped, undilated) convolution or a
/// dense product.
pub fn is_replaceable(expr: &OpExpr) -> bool {
    expr.weight.is_some()
        && expr.groups == 1
        && expr.branch != Branch::Gate
        && expr.spatial.iter().all(|s| s.dilation == 1)
}

impl Replacement {
    /// Why `self` cannot replace `expr`, or `Ok(())` when it can.
    pub fn legality(&self, expr: &OpExpr) -> std::result::Result<(), String> {
        if *self == Self::Keep {
            return Ok(());
        }
        if !is_replaceable(expr) {
            return Err("only ungrouped, undilated convolutions and dense layers".into());
        }
        let dense = expr.spatial.is_empty();
        let cin = expr.input.channels;
        let cout = expr.out_channels();
        let (kh, kw) = expr.kernel_hw();
        let stride = expr.spatial.first().map_or(1, |s| s.stride);
        match *self {
            Self::Keep => Ok(()),
            Self::LowRankDense { rank } => {
                if !dense {
                    return Err("low-rank dense replaces dense layers only".into());
                }
                if rank == 0 || rank * (cin + cout) >= cin * cout {
                    return Err(format!(
                        "rank {rank} does not shrink a {cin} -> {cout} dense layer"
                    ));
                }
                Ok(())
            }
            _ if dense => Err("dense layers take low-rank dense replacements only".into()),
            Self::GroupedShuffle { groups } => {
                if groups < 2 || !cin.is_multiple_of(groups) || !cout.is_multiple_of(groups) {
                    return Err(format!(
                        "{groups} groups do not divide {cin} -> {cout} channels"
                    ));
                }
                Ok(())
            }
            Self::Dilated { kernel, dilation } => {
                if kh != kw {
                    return Err("dilation replaces square kernels only".into());
                }
                if kernel == 0 || kernel >= kh || dilation < 2 || dilation * (kernel - 1) != kh - 1
                {
                    return Err(format!(
                        "a {kernel}x{kernel} kernel with dilation {dilation} does not span {kh}"
                    ));
                }
                Ok(())
            }
            Self::Factorised(f) => {
                let [(h1, w1), (h2, w2)] = f.kernels((kh, kw));
                let spatial_first = h1 * w1 > 1;
                let spatial_second = h2 * w2 > 1;
                if spatial_first && spatial_second && stride != 1 {
                    return Err("a split spatial reduction needs stride 1".into());
                }
                match f.channels {
                    ChannelSplit::FirstDepthwise if !spatial_first => {
                        Err("a depthwise first stage needs a spatial reduction".into())
                    }
                    ChannelSplit::SecondDepthwise if !spatial_second => {
                        Err("a depthwise second stage needs a spatial reduction".into())
                    }
                    ChannelSplit::Bottleneck(r) => {
                        let bound = (cin * h1 * w1).min(cout * h2 * w2);
                        if r == 0 || r >= bound {
                            Err(format!("rank {r} is not below the split's rank {bound}"))
                        } else {
                            Ok(())
                        }
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// The terms that compute the replacement of `expr` (the original's epilogue on the last
    /// one). Errors when the replacement is not legal for `expr`.
    pub fn apply(&self, expr: &OpExpr) -> std::result::Result<Vec<OpExpr>, String> {
        self.legality(expr)?;
        let cin = expr.input.channels;
        let cout = expr.out_channels();
        let stride = expr.spatial.first().map_or(1, |s| s.stride);
        let epilogue = expr.epilogue;
        let linear = dynas_space::Epilogue::LINEAR;
        let named = |suffix: &str| format!("{}.{suffix}", expr.name);
        Ok(match *self {
            Self::Keep => vec![expr.clone()],
            Self::LowRankDense { rank } => {
                let first = OpExpr::dense(named("0"), expr.input, rank, linear);
                let second = OpExpr::dense(named("1"), first.output_shape(), cout, epilogue);
                vec![first, second]
            }
            Self::GroupedShuffle { groups } => vec![OpExpr::conv(
                named("grouped"),
                expr.input,
                cout,
                expr.kernel_hw(),
                stride,
                1,
                groups,
                epilogue,
            )],
            Self::Dilated { kernel, dilation } => vec![OpExpr::conv(
                named("dilated"),
                expr.input,
                cout,
                (kernel, kernel),
                stride,
                dilation,
                1,
                epilogue,
            )],
            Self::Factorised(f) => {
                let [k1, k2] = f.kernels(expr.kernel_hw());
                let (s1, s2) = if k2.0 * k2.1 > 1 && k1.0 * k1.1 == 1 {
                    (1, stride)
                } else {
                    (stride, 1)
                };
                let (width, g1, g2) = match f.channels {
                    ChannelSplit::Bottleneck(r) => (r, 1, 1),
                    ChannelSplit::FirstDepthwise => (cin, cin, 1),
                    ChannelSplit::SecondDepthwise => (cout, 1, cout),
                };
                let first = OpExpr::conv(named("0"), expr.input, width, k1, s1, 1, g1, linear);
                let second = OpExpr::conv(
                    named("1"),
                    first.output_shape(),
                    cout,
                    k2,
                    s2,
                    1,
                    g2,
                    epilogue,
                );
                vec![first, second]
            }
        })
    }

    /// How the replacement's weights are initialised from the original's.
    pub fn initialisation(&self) -> &'static str {
        match self {
            Self::Keep => "the original weights",
            Self::Factorised(f) => match f.channels {
                ChannelSplit::Bottleneck(_) => {
                    "truncated SVD of the kernel reshaped to [second-stage indices, first-stage indices]; each stage takes sqrt(S) of the singular values"
                }
                ChannelSplit::FirstDepthwise => {
                    "per input channel, rank-1 SVD of W[:, ci] as [co, first-stage taps]; exact when the kernel is separable"
                }
                ChannelSplit::SecondDepthwise => {
                    "per output channel, rank-1 SVD of W[co] as [second-stage taps, ci]; exact when the kernel is separable"
                }
            },
            Self::GroupedShuffle { .. } => {
                "block-diagonal part of W: output channel co keeps its weights on the input group the shuffle routes to it"
            }
            Self::Dilated { .. } => "the original taps at the dilated positions",
            Self::LowRankDense { .. } => "truncated SVD of W, sqrt(S) to each factor",
        }
    }

    /// Layers that describe the replacement of `expr` for cost models (a shuffle is a
    /// [`OpKind::Custom`] layer that only moves memory).
    pub fn layers(&self, expr: &OpExpr) -> std::result::Result<Vec<Layer>, String> {
        let mut layers: Vec<Layer> = self.apply(expr)?.iter().map(term_layer).collect();
        if let Self::GroupedShuffle { .. } = self
            && let Some(last) = layers.last()
        {
            let out = last.output();
            layers.push(Layer::custom(
                format!("{}.shuffle", expr.name),
                out,
                out.channels,
                1,
                CustomCounts {
                    macs: 0,
                    params: 0,
                    written_elements: out.elements(),
                },
            ));
        }
        Ok(layers)
    }
}

/// The layer computing one expression term (a conv or a linear layer).
pub fn term_layer(term: &OpExpr) -> Layer {
    let e = term.epilogue;
    let mut layer = if term.spatial.is_empty() {
        Layer::linear(term.name.clone(), term.input.channels, term.out_channels())
    } else {
        let (kh, kw) = term.kernel_hw();
        let stride = term.spatial[0].stride;
        let dilation = term.spatial[0].dilation;
        Layer::conv(
            term.name.clone(),
            term.input,
            term.out_channels(),
            kh,
            stride,
            e.activation,
        )
        .with_kernel_hw(kh, kw)
        .with_dilation(dilation)
        .with_groups(term.groups)
    };
    layer.batch_norm = e.batch_norm;
    layer.bias = e.bias;
    layer.activation = e.activation;
    layer
}

/// Bounds of the candidate enumeration (hyper-parameters; [`CandidateParams::check`] them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateParams {
    /// Bottleneck widths and dense ranks as fractions of `min(cin, cout)` (in `(0, 1)`).
    pub rank_fractions: Vec<f64>,
    /// Group counts tried for grouped convolutions (each at least 2).
    pub groups: Vec<usize>,
    /// Keep only candidates with at most this fraction of the original's MACs (in `(0, 1]`).
    pub max_macs_ratio: f64,
}

impl Default for CandidateParams {
    fn default() -> Self {
        Self {
            rank_fractions: vec![0.125, 0.25, 0.5],
            groups: vec![2, 4],
            max_macs_ratio: 0.75,
        }
    }
}

/// Validated [`CandidateParams`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateConfig(CandidateParams);

impl CandidateParams {
    /// Validates the bounds.
    pub fn check(self) -> Result<CandidateConfig> {
        if self
            .rank_fractions
            .iter()
            .any(|&f| !(f > 0.0 && f < 1.0 && f.is_finite()))
        {
            return Err(SearchError::invalid(
                "rank_fractions",
                "every fraction must lie in (0, 1)",
            ));
        }
        if self.groups.iter().any(|&g| g < 2) {
            return Err(SearchError::invalid(
                "groups",
                "every group count must be at least 2",
            ));
        }
        if !(self.max_macs_ratio > 0.0 && self.max_macs_ratio <= 1.0) {
            return Err(SearchError::invalid("max_macs_ratio", "must lie in (0, 1]"));
        }
        Ok(CandidateConfig(self))
    }
}

impl CandidateConfig {
    /// The validated bounds.
    pub fn params(&self) -> &CandidateParams {
        &self.0
    }
}

fn macs_of(terms: &[OpExpr]) -> u64 {
    terms.iter().map(OpExpr::macs).sum()
}

/// Every legal replacement of `expr` within `config`'s bounds, enumerated from the splits of
/// its reduction indices (plus grouped, dilated and low-rank dense forms), cheapest first and
/// without duplicates; `keep` is not included.
pub fn candidates(expr: &OpExpr, config: &CandidateConfig) -> Vec<Replacement> {
    if !is_replaceable(expr) {
        return Vec::new();
    }
    let p = config.params();
    let cin = expr.input.channels;
    let cout = expr.out_channels();
    let mut ranks: Vec<usize> = p
        .rank_fractions
        .iter()
        .map(|f| ((cin.min(cout) as f64 * f).round() as usize).max(1))
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let mut all = Vec::new();
    if expr.spatial.is_empty() {
        all.extend(ranks.iter().map(|&rank| Replacement::LowRankDense { rank }));
    } else {
        let (kh, _) = expr.kernel_hw();
        for first_height in [true, false] {
            for first_width in [true, false] {
                let mut splits = vec![ChannelSplit::FirstDepthwise, ChannelSplit::SecondDepthwise];
                splits.extend(ranks.iter().map(|&r| ChannelSplit::Bottleneck(r)));
                for channels in splits {
                    all.push(Replacement::Factorised(Factorisation {
                        first_height,
                        first_width,
                        channels,
                    }));
                }
            }
        }
        all.extend(
            p.groups
                .iter()
                .map(|&groups| Replacement::GroupedShuffle { groups }),
        );
        for kernel in 2..kh {
            for dilation in 2..kh {
                all.push(Replacement::Dilated { kernel, dilation });
            }
        }
    }
    let budget = (expr.macs() as f64 * p.max_macs_ratio) as u64;
    let mut legal: Vec<(u64, String, Replacement)> = Vec::new();
    for r in all {
        let Ok(terms) = r.apply(expr) else { continue };
        let macs = macs_of(&terms);
        // Splits that differ only in a 1-wide axis compute the same thing: keep one label.
        let signature = terms
            .iter()
            .map(|t| format!("{:?}{:?}{}", t.kernel_hw(), t.groups, t.out_channels()))
            .collect::<String>();
        if macs <= budget && !legal.iter().any(|(_, s, _)| *s == signature) {
            legal.push((macs, signature, r));
        }
    }
    legal.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.2.to_string().cmp(&b.2.to_string()))
    });
    legal.into_iter().map(|(_, _, r)| r).collect()
}

/// One replaceable operator of a network: a term of one of its layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// Index of the layer in the network.
    pub layer: usize,
    /// Index of the term within the layer's [`LayerExpr`].
    pub term: usize,
    /// The term.
    pub expr: OpExpr,
    /// Its candidates, cheapest first, then [`Replacement::Keep`].
    pub choices: Vec<Replacement>,
}

impl Unit {
    /// `layer.term` (e.g. `stage2.block1.a`), naming the unit in plans and tables.
    pub fn name(&self, network: &Network) -> String {
        let layer = network
            .layers
            .get(self.layer)
            .map_or("?", |l| l.name.as_str());
        format!("{layer}.{}", self.expr.name)
    }

    /// Key of the unit replaced by `choice` in a [`GosLut`]: the operator's shape and
    /// epilogue, then the replacement, so that equal operators share entries.
    pub fn lut_key(&self, choice: &Replacement) -> String {
        lut_key(&self.expr, choice)
    }
}

/// Key of `expr` replaced by `choice` in a [`GosLut`].
pub fn lut_key(expr: &OpExpr, choice: &Replacement) -> String {
    let i = expr.input;
    let (kh, kw) = expr.kernel_hw();
    let stride = expr.spatial.first().map_or(1, |s| s.stride);
    let e = expr.epilogue;
    format!(
        "{}x{}x{}->{} k{kh}x{kw} s{stride} bn{} b{} {:?} | {choice}",
        i.channels,
        i.height,
        i.width,
        expr.out_channels(),
        u8::from(e.batch_norm),
        u8::from(e.bias),
        e.activation
    )
}

/// The layers whose terms GOS replaces: plain convs, residual blocks and linear layers.
fn has_units(layer: &Layer) -> bool {
    matches!(
        layer.kind,
        OpKind::Conv | OpKind::ResidualBlock | OpKind::Linear
    )
}

/// The per-unit choice of replacement: what a genotype of a [`GosSpace`] decodes to, and what
/// the tch side builds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GosPlan {
    /// Replacement by unit name (`layer.term`); units not listed are kept.
    pub replacements: BTreeMap<String, Replacement>,
}

impl GosPlan {
    /// The replacement of unit `name` (keep when unlisted).
    pub fn get(&self, name: &str) -> Replacement {
        self.replacements
            .get(name)
            .copied()
            .unwrap_or(Replacement::Keep)
    }
}

/// The space of per-unit replacements of one network.
#[derive(Clone, Debug)]
pub struct GosSpace {
    network: Network,
    units: Vec<Unit>,
    dimensions: Vec<Dimension>,
    exprs: Vec<LayerExpr>,
}

impl GosSpace {
    /// The space of `network`'s replacements within `config`'s bounds; units with no legal
    /// candidate are left out. Errors when nothing can be replaced.
    pub fn new(network: Network, config: &CandidateConfig) -> Result<Self> {
        let exprs: Vec<LayerExpr> = network.layers.iter().map(LayerExpr::from_layer).collect();
        let mut units = Vec::new();
        for (li, (layer, expr)) in network.layers.iter().zip(&exprs).enumerate() {
            if !has_units(layer) {
                continue;
            }
            for (ti, term) in expr.terms.iter().enumerate() {
                let mut choices = candidates(term, config);
                if choices.is_empty() {
                    continue;
                }
                choices.push(Replacement::Keep);
                units.push(Unit {
                    layer: li,
                    term: ti,
                    expr: term.clone(),
                    choices,
                });
            }
        }
        if units.is_empty() {
            return Err(SearchError::invalid(
                "network",
                "no operator of the network has a legal replacement",
            ));
        }
        let dimensions = units
            .iter()
            .map(|u| {
                Dimension::new(
                    u.name(&network),
                    u.choices.iter().map(ToString::to_string).collect(),
                )
            })
            .collect::<std::result::Result<Vec<_>, SpaceError>>()?;
        Ok(Self {
            network,
            units,
            dimensions,
            exprs,
        })
    }

    /// The original network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The replaceable units, in dimension order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The genotype that keeps every operator.
    pub fn original(&self) -> Genotype {
        self.largest()
    }

    /// The plan a genotype picks (kept units are not listed).
    pub fn plan(&self, genotype: &Genotype) -> Result<GosPlan> {
        self.validate(genotype)?;
        let mut plan = GosPlan::default();
        for (unit, &gene) in self.units.iter().zip(genotype.genes()) {
            let choice = unit.choices[gene];
            if choice != Replacement::Keep {
                plan.replacements.insert(unit.name(&self.network), choice);
            }
        }
        Ok(plan)
    }

    /// The genotype of `plan`; errors on a unit or replacement the space does not have.
    pub fn genotype(&self, plan: &GosPlan) -> Result<Genotype> {
        let names: Vec<String> = self.units.iter().map(|u| u.name(&self.network)).collect();
        for name in plan.replacements.keys() {
            if !names.contains(name) {
                return Err(SearchError::invalid(
                    "plan",
                    format!("unit `{name}` is not a replaceable unit of the network"),
                ));
            }
        }
        let genes = self
            .units
            .iter()
            .zip(&names)
            .map(|(unit, name)| {
                let choice = plan.get(name);
                unit.choices
                    .iter()
                    .position(|c| *c == choice)
                    .ok_or_else(|| {
                        SearchError::invalid(
                            "plan",
                            format!("`{choice}` is not a candidate for unit `{name}`"),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Genotype::new(genes))
    }

    /// The adapted network as layers for cost models: layers without a replaced unit stay
    /// whole; a layer with one is written as the layers of its terms (a residual block's
    /// addition is free in every counter).
    pub fn adapted_network(&self, plan: &GosPlan) -> Result<Network> {
        let mut layers = Vec::new();
        for (li, (layer, expr)) in self.network.layers.iter().zip(&self.exprs).enumerate() {
            let replaced: Vec<(&Unit, Replacement)> = self
                .units
                .iter()
                .filter(|u| u.layer == li)
                .map(|u| (u, plan.get(&u.name(&self.network))))
                .filter(|(_, r)| *r != Replacement::Keep)
                .collect();
            if replaced.is_empty() {
                layers.push(layer.clone());
                continue;
            }
            for (ti, term) in expr.terms.iter().enumerate() {
                let choice = replaced
                    .iter()
                    .find(|(u, _)| u.term == ti)
                    .map_or(Replacement::Keep, |(_, r)| *r);
                let mut term = term.clone();
                term.name = format!("{}.{}", layer.name, term.name);
                let parts = choice.layers(&term).map_err(|reason| {
                    SearchError::invalid("plan", format!("unit `{}`: {reason}", term.name))
                })?;
                layers.extend(parts);
            }
        }
        let mut network = Network::new(self.network.input, layers);
        network.arch_id = None;
        Ok(network)
    }
}

impl SearchSpace for GosSpace {
    fn name(&self) -> &str {
        "gos"
    }

    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    fn decode(&self, genotype: &Genotype) -> dynas_space::Result<Network> {
        self.validate(genotype)?;
        let plan = self
            .plan(genotype)
            .map_err(|e| SpaceError::InvalidSpace(e.to_string()))?;
        self.adapted_network(&plan)
            .map_err(|e| SpaceError::InvalidSpace(e.to_string()))
    }
}

/// A host-measured lookup table of operator latencies: one entry per unit and candidate (by
/// [`lut_key`]) plus the measured rest of the network (everything that is not a unit).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GosLut {
    /// Batch size of the measurements.
    pub batch: usize,
    /// Threads libtorch ran with.
    pub threads: usize,
    /// Milliseconds of the network minus its units (pooling, additions, the framework's
    /// per-call overhead), measured as the whole original network minus its units' entries.
    pub rest_ms: f64,
    /// Milliseconds by [`lut_key`].
    pub entries: BTreeMap<String, f64>,
}

impl GosLut {
    /// Predicted latency of `plan` on `space`'s network: the rest plus every unit's entry.
    pub fn predict(&self, space: &GosSpace, plan: &GosPlan) -> Result<f64> {
        let mut total = self.rest_ms;
        for unit in space.units() {
            let key = unit.lut_key(&plan.get(&unit.name(space.network())));
            total += self
                .entries
                .get(&key)
                .copied()
                .ok_or_else(|| SearchError::invalid("lut", format!("no entry for `{key}`")))?;
        }
        Ok(total)
    }

    /// Reads a table written by [`GosLut::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| SearchError::parse(path, e.to_string()))
    }

    /// Writes the table as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SearchError::parse(path, e.to_string()))?;
        std::fs::write(path, text).map_err(|e| SearchError::io(path, e))
    }
}

/// Where [`GosProblem`] takes latencies from.
pub enum GosLatency {
    /// A host-measured [`GosLut`].
    Table(GosLut),
    /// Any cost model, at an operating point, on [`GosSpace::adapted_network`].
    Model(Box<dyn CostModel>, OperatingPoint),
}

impl fmt::Debug for GosLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(t) => write!(f, "Table({} entries)", t.entries.len()),
            Self::Model(m, p) => write!(f, "Model({}, {p:?})", m.name()),
        }
    }
}

/// Accuracy proxy of every unit's choices: the error a choice adds (e.g. the relative output
/// error of the initialised replacement on calibration images), aligned with
/// [`Unit::choices`]. A plan's proxy is the sum over units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitErrors(pub Vec<Vec<f64>>);

impl UnitErrors {
    /// A data-free prior: a choice's error is the fraction of the unit's parameters it drops
    /// (zero for keep). Only a stand-in where no calibration data is at hand.
    pub fn compression_prior(space: &GosSpace) -> Self {
        Self(
            space
                .units()
                .iter()
                .map(|u| {
                    let original = u.expr.params().max(1) as f64;
                    u.choices
                        .iter()
                        .map(|c| {
                            let params: u64 = c
                                .apply(&u.expr)
                                .map(|t| t.iter().map(OpExpr::params).sum())
                                .unwrap_or(0);
                            (1.0 - params as f64 / original).max(0.0)
                        })
                        .collect()
                })
                .collect(),
        )
    }
}

/// Per-unit replacement search: minimise latency and the summed accuracy proxy.
#[derive(Debug)]
pub struct GosProblem {
    space: GosSpace,
    latency: GosLatency,
    errors: UnitErrors,
    objectives: Vec<Objective>,
}

impl GosProblem {
    /// A problem over `space` with latencies from `latency` and the proxy from `errors`
    /// (which must match the space's units and choices).
    pub fn new(space: GosSpace, latency: GosLatency, errors: UnitErrors) -> Result<Self> {
        if errors.0.len() != space.units().len()
            || errors
                .0
                .iter()
                .zip(space.units())
                .any(|(e, u)| e.len() != u.choices.len() || e.iter().any(|v| !v.is_finite()))
        {
            return Err(SearchError::invalid(
                "errors",
                "one finite error per unit and choice is needed",
            ));
        }
        Ok(Self {
            space,
            latency,
            errors,
            objectives: vec![
                Objective::minimize("latency_ms"),
                Objective::minimize("error_proxy"),
            ],
        })
    }

    /// The space searched.
    pub fn gos_space(&self) -> &GosSpace {
        &self.space
    }

    /// Predicted latency of a genotype, ms.
    pub fn latency_ms(&self, genotype: &Genotype) -> Result<f64> {
        let plan = self.space.plan(genotype)?;
        match &self.latency {
            GosLatency::Table(t) => t.predict(&self.space, &plan),
            GosLatency::Model(model, point) => {
                let network = self.space.adapted_network(&plan)?;
                Ok(model.estimate(&network, point)?.latency_ms)
            }
        }
    }

    /// Accuracy proxy of a genotype (summed unit errors).
    pub fn error_proxy(&self, genotype: &Genotype) -> Result<f64> {
        self.space.validate(genotype)?;
        Ok(self
            .errors
            .0
            .iter()
            .zip(genotype.genes())
            .map(|(e, &g)| e[g])
            .sum())
    }
}

impl Problem for GosProblem {
    fn name(&self) -> &str {
        "gos"
    }

    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }

    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }

    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        Ok(Evaluation::feasible(vec![
            self.latency_ms(genotype)?,
            self.error_proxy(genotype)?,
        ]))
    }

    fn label(&self, genotype: &Genotype) -> Option<String> {
        let plan = self.space.plan(genotype).ok()?;
        Some(
            plan.replacements
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Budget, Executor, Nsga2, Nsga2Config};
    use dynas_cost::MacsModel;
    use dynas_space::{Activation, PoolKind, TensorShape};

    fn vgg() -> Network {
        let input = TensorShape::new(1, 28, 28);
        let c1 = Layer::conv("c1", input, 32, 3, 1, Activation::Relu);
        let c2 = Layer::conv("c2", c1.output(), 64, 3, 1, Activation::Relu);
        let p = Layer::pool("p", PoolKind::Max, c2.output(), 2, 2);
        let r = Layer::residual_block("r", p.output(), 64, 1);
        let g = Layer::global_avg_pool("gap", r.output());
        let fc = Layer::linear("fc", 64, 10);
        Network::new(input, vec![c1, c2, p, r, g, fc])
    }

    fn config() -> CandidateConfig {
        CandidateParams::default().check().expect("default bounds")
    }

    #[test]
    fn named_rewrites_are_among_the_enumerated_candidates() {
        let layer = Layer::conv(
            "c",
            TensorShape::new(64, 14, 14),
            64,
            3,
            1,
            Activation::Relu,
        );
        let expr = &LayerExpr::from_layer(&layer).terms[0];
        let found = candidates(expr, &config());
        for wanted in [
            Replacement::Factorised(Factorisation::depthwise_separable()),
            Replacement::Factorised(Factorisation::spatially_separable(16)),
            Replacement::Factorised(Factorisation::low_rank(16)),
            Replacement::GroupedShuffle { groups: 4 },
            Replacement::Dilated {
                kernel: 2,
                dilation: 2,
            },
        ] {
            assert!(found.contains(&wanted), "{wanted} missing from {found:?}");
        }
        // Enumeration reaches beyond the fixed list: 1x1 then kxk, pointwise then depthwise.
        assert!(found.iter().any(|r| r.to_string().starts_with("fac_c_chw")));
        assert!(found.iter().any(|r| r.to_string() == "fac_c_dhw"));
        let macs: Vec<u64> = found
            .iter()
            .map(|r| macs_of(&r.apply(expr).expect("legal")))
            .collect();
        assert!(macs.windows(2).all(|w| w[0] <= w[1]), "cheapest first");
        assert!(macs.iter().all(|&m| m * 4 <= expr.macs() * 3));
    }

    #[test]
    fn legality_conditions_reject_what_does_not_fit() {
        let strided = Layer::conv("s", TensorShape::new(6, 8, 8), 9, 3, 2, Activation::Relu);
        let expr = &LayerExpr::from_layer(&strided).terms[0];
        let split = Replacement::Factorised(Factorisation::spatially_separable(2));
        assert!(
            split.legality(expr).is_err(),
            "split spatial reduction at stride 2"
        );
        assert!(
            Replacement::GroupedShuffle { groups: 2 }
                .legality(expr)
                .is_err()
        );
        assert!(
            Replacement::GroupedShuffle { groups: 3 }
                .legality(expr)
                .is_ok()
        );
        let too_big = Replacement::Factorised(Factorisation::low_rank(9));
        assert!(too_big.legality(expr).is_err());
        assert!(
            Replacement::Dilated {
                kernel: 2,
                dilation: 3
            }
            .legality(expr)
            .is_err()
        );
        let dense = &LayerExpr::from_layer(&Layer::linear("fc", 64, 10)).terms[0];
        assert!(
            Replacement::LowRankDense { rank: 8 }
                .legality(dense)
                .is_ok()
        );
        assert!(
            Replacement::LowRankDense { rank: 9 }
                .legality(dense)
                .is_err()
        );
        assert!(
            Replacement::Factorised(Factorisation::depthwise_separable())
                .legality(dense)
                .is_err()
        );
    }

    #[test]
    fn dilated_replacement_keeps_the_receptive_field() {
        let layer = Layer::conv("c", TensorShape::new(8, 16, 16), 8, 5, 1, Activation::Relu);
        let expr = &LayerExpr::from_layer(&layer).terms[0];
        let replaced = Replacement::Dilated {
            kernel: 3,
            dilation: 2,
        }
        .apply(expr)
        .expect("legal");
        assert_eq!(replaced[0].receptive_field(), expr.receptive_field());
        let separable = Replacement::Factorised(Factorisation::spatially_separable(4))
            .apply(expr)
            .expect("legal");
        let composed = separable[0]
            .receptive_field()
            .then(separable[1].receptive_field());
        assert_eq!(composed, expr.receptive_field());
    }

    #[test]
    fn adapted_network_counts_match_the_replacement_terms() {
        let space = GosSpace::new(vgg(), &config()).expect("space");
        let names: Vec<&str> = space.dimensions().iter().map(|d| d.name()).collect();
        assert_eq!(
            names,
            [
                "c1.conv",
                "c2.conv",
                "r.a",
                "r.b",
                "r.shortcut",
                "fc.linear"
            ]
        );
        let genotype = space.smallest();
        let plan = space.plan(&genotype).expect("plan");
        assert_eq!(space.genotype(&plan).expect("round trip"), genotype);
        let adapted = space.decode(&genotype).expect("decode");
        let mut expected = 0;
        for (layer, expr) in space
            .network()
            .layers
            .iter()
            .zip(space.network().layers.iter().map(LayerExpr::from_layer))
        {
            for term in &expr.terms {
                let name = format!("{}.{}", layer.name, term.name);
                let terms = plan.get(&name).apply(term).expect("legal");
                expected += macs_of(&terms);
            }
        }
        assert_eq!(adapted.macs(), expected);
        assert!(adapted.macs() < space.network().macs());
        let original = space.decode(&space.original()).expect("decode");
        assert_eq!(&original, space.network());
    }

    #[test]
    fn nsga2_finds_a_front_from_keep_all_to_cheapest() {
        let space = GosSpace::new(vgg(), &config()).expect("space");
        let errors = UnitErrors::compression_prior(&space);
        let model = MacsModel::new(1e6).expect("model");
        let problem = GosProblem::new(
            space,
            GosLatency::Model(Box::new(model), OperatingPoint::default()),
            errors,
        )
        .expect("problem");
        let strategy = Nsga2::new(Nsga2Config {
            population: 16,
            ..Nsga2Config::default()
        })
        .expect("nsga2");
        let result = Executor::new(
            &problem,
            strategy,
            Budget::evaluations(200).expect("budget"),
        )
        .seed(5)
        .run()
        .expect("search");
        let original = problem.gos_space().original();
        let keep_ms = problem.latency_ms(&original).expect("latency");
        let fastest = result
            .front
            .points
            .iter()
            .map(|p| p.values[0])
            .fold(f64::INFINITY, f64::min);
        assert!(fastest < keep_ms * 0.5, "{fastest} vs {keep_ms}");
        assert!(result.front.points.len() > 2);
    }

    #[test]
    fn lut_predicts_rest_plus_unit_entries_and_names_missing_keys() {
        let space = GosSpace::new(vgg(), &config()).expect("space");
        let mut lut = GosLut {
            batch: 1,
            threads: 2,
            rest_ms: 0.5,
            entries: BTreeMap::new(),
        };
        for (i, unit) in space.units().iter().enumerate() {
            for choice in &unit.choices {
                lut.entries.insert(unit.lut_key(choice), 1.0 + i as f64);
            }
        }
        let plan = space.plan(&space.smallest()).expect("plan");
        let n = space.units().len() as f64;
        approx::assert_relative_eq!(
            lut.predict(&space, &plan).expect("predict"),
            0.5 + n + n * (n - 1.0) / 2.0
        );
        lut.entries.clear();
        let err = lut.predict(&space, &plan).expect_err("empty table");
        assert!(err.to_string().contains("no entry"), "{err}");
    }
}
