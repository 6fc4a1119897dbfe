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
//! [`GosLut`] measured on the host or from any [`CostModel`](dynas_cost::CostModel).

use std::fmt;

use dynas_space::opexpr::Branch;
use dynas_space::{CustomCounts, Layer, Network, OpExpr};
use serde::{Deserialize, Serialize};

use dynas_search::{Result, SearchError};

mod problem;
mod space;
#[cfg(test)]
mod tests;

pub use problem::{GosLatency, GosLut, GosProblem, UnitErrors};
pub use space::{GosPlan, GosSpace};

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
    /// [`OpKind::Custom`](dynas_space::OpKind::Custom) layer that only moves memory).
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
    /// Index of the term within the layer's [`LayerExpr`](dynas_space::LayerExpr).
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

    /// Operator calls of the unit replaced by `choice`: its products, plus the channel shuffle
    /// of a grouped replacement (1 for an illegal choice, which no plan holds).
    pub fn calls(&self, choice: &Replacement) -> usize {
        let products = choice.apply(&self.expr).map_or(1, |parts| parts.len());
        products + usize::from(matches!(choice, Replacement::GroupedShuffle { .. }))
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
