//! Measuring on this host: time a network's layers on the local CPU and build a lookup table
//! for the machine you are on.
//!
//! This answers the most-asked question of once-for-all and Dynamic-OFA users, "how do I build
//! the LUT for my device?": decode the networks of your space, call [`build_lut`] on the device
//! itself, save the table with [`LayerLut::save_harmonic`] and load it with
//! [`LutModel`](crate::LutModel). The executor here is a pure-Rust fp32 reference
//! ([`HostExecutor`]: im2col + ndarray matrix products), so its figures describe this
//! implementation on this CPU; to time a real framework, time your own closure with
//! [`time_closure`] (the libtorch-backed measurement lives in `dynas-supernet`).

use std::time::Instant;

use dynas_space::{Activation, Layer, Network, OpKind, PoolKind, TensorShape};
use ndarray::{Array2, Array3, Axis, Slice};

use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::lut::{KeyScheme, LayerLut, LutEntry};
use crate::model::{Cost, CostBreakdown, CostModel};

/// Warm-up and measured runs; checked by [`MeasureConfig::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasureConfig {
    warmups: usize,
    runs: usize,
}

impl MeasureConfig {
    /// `warmups` untimed runs, then the median of `runs` (≥ 1) timed runs.
    pub fn new(warmups: usize, runs: usize) -> Result<Self> {
        if runs == 0 {
            return Err(CostError::InvalidParameter {
                name: "runs".to_string(),
                reason: "at least one timed run is needed".to_string(),
            });
        }
        Ok(Self { warmups, runs })
    }

    /// Warm-up runs.
    pub fn warmups(&self) -> usize {
        self.warmups
    }

    /// Timed runs.
    pub fn runs(&self) -> usize {
        self.runs
    }
}

impl Default for MeasureConfig {
    /// 3 warm-ups, median of 11.
    fn default() -> Self {
        Self {
            warmups: 3,
            runs: 11,
        }
    }
}

/// Summary of timed runs, ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Number of timed runs.
    pub runs: usize,
}

/// Times `f`: `config.warmups()` untimed calls, then the median of `config.runs()` calls.
pub fn time_closure(config: &MeasureConfig, mut f: impl FnMut()) -> Timing {
    for _ in 0..config.warmups {
        f();
    }
    let mut t: Vec<f64> = (0..config.runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let median = if n % 2 == 1 {
        t[n / 2]
    } else {
        0.5 * (t[n / 2 - 1] + t[n / 2])
    };
    Timing {
        median_ms: median,
        min_ms: t[0],
        max_ms: t[n - 1],
        runs: n,
    }
}

/// Weights of one prepared layer.
#[derive(Clone, Debug)]
enum Weights {
    None,
    /// One conv: (out, in/groups · k · k) per layer.
    Conv(Array2<f32>),
    MbConv {
        expand: Option<Array2<f32>>,
        depthwise: Array2<f32>,
        se: Option<(Array2<f32>, Array2<f32>)>,
        project: Array2<f32>,
    },
    Residual {
        a: Array2<f32>,
        b: Array2<f32>,
        shortcut: Array2<f32>,
    },
    Linear(Array2<f32>),
}

fn weights(rows: usize, cols: usize) -> Array2<f32> {
    // Deterministic, small, non-zero values: timing does not depend on them.
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        (((i * 31 + j * 17) % 13) as f32 - 6.0) * 1e-2
    })
}

fn activate(x: &mut Array3<f32>, act: Activation) {
    match act {
        Activation::None => {}
        Activation::Relu => x.mapv_inplace(|v| v.max(0.0)),
        Activation::Relu6 => x.mapv_inplace(|v| v.clamp(0.0, 6.0)),
        Activation::HardSwish => x.mapv_inplace(|v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0),
        Activation::Swish => x.mapv_inplace(|v| v / (1.0 + (-v).exp())),
    }
}

/// "Same"-padded grouped convolution by im2col + matrix product.
fn conv(
    x: &Array3<f32>,
    w: &Array2<f32>,
    out_c: usize,
    k: usize,
    stride: usize,
    groups: usize,
) -> Array3<f32> {
    let (c, h, wd) = x.dim();
    let (ho, wo) = (h.div_ceil(stride), wd.div_ceil(stride));
    let pad = (k - 1) / 2;
    let cg = c / groups;
    let og = out_c / groups;
    let mut out = Array3::<f32>::zeros((out_c, ho, wo));
    let mut cols = Array2::<f32>::zeros((cg * k * k, ho * wo));
    for g in 0..groups {
        if k == 1 && stride == 1 {
            let xin = x.slice_axis(Axis(0), Slice::from(g * cg..(g + 1) * cg));
            let xin = xin.to_shape((cg, h * wd)).map(|v| v.to_owned());
            if let Ok(xin) = xin {
                let y = w
                    .slice_axis(Axis(0), Slice::from(g * og..(g + 1) * og))
                    .dot(&xin);
                if let Ok(y) = y.into_shape_with_order((og, ho, wo)) {
                    out.slice_axis_mut(Axis(0), Slice::from(g * og..(g + 1) * og))
                        .assign(&y);
                }
            }
            continue;
        }
        cols.fill(0.0);
        for ci in 0..cg {
            for ky in 0..k {
                for kx in 0..k {
                    let row = (ci * k + ky) * k + kx;
                    for oy in 0..ho {
                        let iy = (oy * stride + ky) as isize - pad as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for ox in 0..wo {
                            let ix = (ox * stride + kx) as isize - pad as isize;
                            if ix >= 0 && ix < wd as isize {
                                cols[[row, oy * wo + ox]] =
                                    x[[g * cg + ci, iy as usize, ix as usize]];
                            }
                        }
                    }
                }
            }
        }
        let y = w
            .slice_axis(Axis(0), Slice::from(g * og..(g + 1) * og))
            .dot(&cols);
        if let Ok(y) = y.into_shape_with_order((og, ho, wo)) {
            out.slice_axis_mut(Axis(0), Slice::from(g * og..(g + 1) * og))
                .assign(&y);
        }
    }
    out
}

fn pool(x: &Array3<f32>, kind: PoolKind, k: usize, stride: usize) -> Array3<f32> {
    let (c, h, w) = x.dim();
    let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
    let pad = (k - 1) / 2;
    Array3::from_shape_fn((c, ho, wo), |(ci, oy, ox)| {
        let (mut acc, mut n) = (if kind == PoolKind::Max { f32::MIN } else { 0.0 }, 0);
        for ky in 0..k {
            for kx in 0..k {
                let iy = (oy * stride + ky) as isize - pad as isize;
                let ix = (ox * stride + kx) as isize - pad as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                    let v = x[[ci, iy as usize, ix as usize]];
                    acc = if kind == PoolKind::Max {
                        acc.max(v)
                    } else {
                        acc + v
                    };
                    n += 1;
                }
            }
        }
        if kind == PoolKind::Average {
            acc / n.max(1) as f32
        } else {
            acc
        }
    })
}

/// A network prepared for execution on the local CPU (fp32, batch 1).
#[derive(Clone, Debug)]
pub struct HostExecutor {
    network: Network,
    weights: Vec<Weights>,
}

impl HostExecutor {
    /// Prepares weights for every layer; fails on shapes the layer kinds cannot run
    /// (channels not divisible by groups, zero sizes, even kernels).
    pub fn new(network: &Network) -> Result<Self> {
        let mut ws = Vec::with_capacity(network.layers.len());
        for l in &network.layers {
            let bad = |reason: String| CostError::InvalidParameter {
                name: format!("layer `{}`", l.name),
                reason,
            };
            let (c, o, k) = (l.input.channels, l.out_channels, l.kernel);
            if c == 0
                || o == 0
                || l.stride == 0
                || k == 0
                || l.input.height == 0
                || l.input.width == 0
            {
                return Err(bad("zero size, stride or kernel".to_string()));
            }
            if k % 2 == 0
                && !matches!(
                    l.kind,
                    OpKind::Linear | OpKind::GlobalAvgPool | OpKind::Identity | OpKind::Zero
                )
            {
                return Err(bad(format!(
                    "kernel {k} is even; the reference executor pads symmetrically"
                )));
            }
            ws.push(match l.kind {
                OpKind::Conv => {
                    let g = l.groups.max(1);
                    if c % g != 0 || o % g != 0 {
                        return Err(bad(format!(
                            "{c} -> {o} channels not divisible by {g} groups"
                        )));
                    }
                    Weights::Conv(weights(o, c / g * k * k))
                }
                OpKind::MbConv => {
                    let m = l.mid_channels;
                    Weights::MbConv {
                        expand: l.has_expansion().then(|| weights(m, c)),
                        depthwise: weights(m, k * k),
                        se: l.se_channels.map(|s| (weights(s, m), weights(m, s))),
                        project: weights(o, m),
                    }
                }
                OpKind::ResidualBlock => Weights::Residual {
                    a: weights(o, c * 9),
                    b: weights(o, o * 9),
                    shortcut: weights(o, c),
                },
                OpKind::Linear => Weights::Linear(weights(o, c * l.input.height * l.input.width)),
                _ => Weights::None,
            });
        }
        Ok(Self {
            network: network.clone(),
            weights: ws,
        })
    }

    /// Runs layer `index` on `x`, which must have the layer's input shape.
    pub fn run_layer(&self, index: usize, x: &Array3<f32>) -> Result<Array3<f32>> {
        let (Some(l), Some(w)) = (self.network.layers.get(index), self.weights.get(index)) else {
            return Err(CostError::InvalidParameter {
                name: "index".to_string(),
                reason: format!(
                    "the network has {} layers, got {index}",
                    self.network.layers.len()
                ),
            });
        };
        let i = l.input;
        if x.dim() != (i.channels, i.height, i.width) {
            return Err(CostError::InvalidParameter {
                name: format!("input of layer `{}`", l.name),
                reason: format!(
                    "expected {:?}, got {:?}",
                    (i.channels, i.height, i.width),
                    x.dim()
                ),
            });
        }
        Ok(self.run_checked(l, w, x))
    }

    fn run_checked(&self, l: &Layer, w: &Weights, x: &Array3<f32>) -> Array3<f32> {
        let o = l.output();
        match (&l.kind, w) {
            (OpKind::Conv, Weights::Conv(w)) => {
                let mut y = conv(x, w, l.out_channels, l.kernel, l.stride, l.groups.max(1));
                activate(&mut y, l.activation);
                y
            }
            (
                OpKind::MbConv,
                Weights::MbConv {
                    expand,
                    depthwise,
                    se,
                    project,
                },
            ) => {
                let mut h = match expand {
                    Some(w) => {
                        let mut h = conv(x, w, l.mid_channels, 1, 1, 1);
                        activate(&mut h, l.activation);
                        h
                    }
                    None => x.clone(),
                };
                h = conv(
                    &h,
                    depthwise,
                    l.mid_channels,
                    l.kernel,
                    l.stride,
                    l.mid_channels,
                );
                activate(&mut h, l.activation);
                if let Some((r, e)) = se {
                    let pooled = h.mean_axis(Axis(2)).and_then(|m| m.mean_axis(Axis(1)));
                    if let Some(p) = pooled {
                        let z = r.dot(&p).mapv(|v| v.max(0.0));
                        let gate = e.dot(&z).mapv(|v| (v + 3.0).clamp(0.0, 6.0) / 6.0);
                        for (mut ch, g) in h.outer_iter_mut().zip(gate.iter()) {
                            ch.mapv_inplace(|v| v * g);
                        }
                    }
                }
                let mut y = conv(&h, project, l.out_channels, 1, 1, 1);
                if l.has_identity_shortcut() {
                    y += x;
                }
                y
            }
            (OpKind::ResidualBlock, Weights::Residual { a, b, shortcut }) => {
                let mut h = conv(x, a, l.out_channels, 3, l.stride, 1);
                activate(&mut h, Activation::Relu);
                let mut y = conv(&h, b, l.out_channels, 3, 1, 1);
                let step = Slice::new(0, None, l.stride as isize);
                let strided = x
                    .slice_axis(Axis(1), step)
                    .slice_axis(Axis(2), step)
                    .to_owned();
                y += &conv(&strided, shortcut, l.out_channels, 1, 1, 1);
                y
            }
            (OpKind::Linear, Weights::Linear(w)) => {
                let flat = x.iter().copied().collect::<ndarray::Array1<f32>>();
                let y = w.dot(&flat);
                y.into_shape_with_order((o.channels, 1, 1))
                    .unwrap_or_else(|_| Array3::zeros((o.channels, 1, 1)))
            }
            (OpKind::Pool(kind), _) => pool(x, *kind, l.kernel, l.stride),
            (OpKind::GlobalAvgPool, _) => {
                let m = x.mean_axis(Axis(2)).and_then(|m| m.mean_axis(Axis(1)));
                m.and_then(|m| m.into_shape_with_order((o.channels, 1, 1)).ok())
                    .unwrap_or_else(|| Array3::zeros((o.channels, 1, 1)))
            }
            (OpKind::Identity, _) => x.clone(),
            _ => Array3::zeros((o.channels, o.height, o.width)),
        }
    }

    /// A deterministic input of `shape`.
    pub fn input(shape: TensorShape) -> Array3<f32> {
        Array3::from_shape_fn((shape.channels, shape.height, shape.width), |(c, y, x)| {
            (((c * 7 + y * 3 + x) % 11) as f32 - 5.0) * 0.1
        })
    }

    /// Runs the whole network on a deterministic input and returns the output. Layers run in
    /// order, each on the previous output; a layer whose input shape differs from that output
    /// (networks that are not a chain, e.g. cells with parallel edges) runs on a fresh input
    /// of its own shape.
    pub fn run(&self) -> Array3<f32> {
        let mut x = Self::input(self.network.input);
        for (l, w) in self.network.layers.iter().zip(&self.weights) {
            let i = l.input;
            if x.dim() != (i.channels, i.height, i.width) {
                x = Self::input(i);
            }
            x = self.run_checked(l, w, &x);
        }
        x
    }

    /// Times every layer separately (on an input of its shape), ms.
    pub fn time_layers(&self, config: &MeasureConfig) -> Vec<Timing> {
        self.network
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let x = Self::input(l.input);
                let w = &self.weights[i];
                time_closure(config, || {
                    std::hint::black_box(self.run_checked(l, w, std::hint::black_box(&x)));
                })
            })
            .collect()
    }
}

/// The local CPU as a [`CostModel`]: runs the network with [`HostExecutor`] and reports
/// measured medians (latency only). Slow by nature: use it to build LUTs or check models,
/// not inside a search loop.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostModel {
    config: MeasureConfig,
}

impl HostModel {
    /// A host model with the given measurement settings.
    pub fn new(config: MeasureConfig) -> Self {
        Self { config }
    }
}

impl CostModel for HostModel {
    fn name(&self) -> &str {
        "host-cpu"
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> Result<Cost> {
        let exec = HostExecutor::new(network)?;
        let t = time_closure(&self.config, || {
            std::hint::black_box(exec.run());
        });
        Ok(Cost::latency(t.median_ms))
    }

    fn breakdown(&self, network: &Network, point: &OperatingPoint) -> Result<CostBreakdown> {
        let exec = HostExecutor::new(network)?;
        let layers = exec
            .time_layers(&self.config)
            .iter()
            .map(|t| Cost::latency(t.median_ms))
            .collect();
        Ok(CostBreakdown {
            layers,
            total: self.estimate(network, point)?,
        })
    }
}

/// Builds a LUT for this host: every distinct layer key (under `scheme`) of `networks`,
/// timed once with [`HostExecutor`]. Identity and zero layers are skipped.
pub fn build_lut(
    networks: &[Network],
    scheme: KeyScheme,
    config: &MeasureConfig,
    name: &str,
) -> Result<LayerLut> {
    let mut lut = LayerLut::new(name);
    for net in networks {
        for (i, layer) in net.layers.iter().enumerate() {
            if matches!(layer.kind, OpKind::Identity | OpKind::Zero) {
                continue;
            }
            let key = scheme.key(layer, i);
            if lut.get(&key).is_some() {
                continue;
            }
            let single = Network::new(layer.input, vec![layer.clone()]);
            let exec = HostExecutor::new(&single)?;
            let t = time_closure(config, || {
                std::hint::black_box(exec.run());
            });
            lut.insert(
                key,
                LutEntry {
                    latency_ms: t.median_ms,
                    energy_mj: None,
                    std_ms: None,
                    count: Some(t.runs as u64),
                },
            );
        }
    }
    Ok(lut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lut::{LutModel, harmonic_key};

    fn small() -> Network {
        let stem = Layer::conv(
            "stem",
            TensorShape::new(3, 16, 16),
            8,
            3,
            2,
            Activation::HardSwish,
        );
        let b0 = Layer::mbconv("b0", stem.output(), 8, 24, 3, 1, Some(4), Activation::Relu);
        let b1 = Layer::mbconv("b1", b0.output(), 16, 48, 5, 2, None, Activation::HardSwish);
        let dw = Layer::conv("dw", b1.output(), 16, 3, 1, Activation::Relu).with_groups(16);
        let res = Layer::residual_block("res", dw.output(), 24, 2);
        let mp = Layer::pool("mp", PoolKind::Max, res.output(), 3, 1);
        let gap = Layer::global_avg_pool("gap", mp.output());
        let fc = Layer::linear("fc", 24, 10);
        Network::new(
            TensorShape::new(3, 16, 16),
            vec![stem, b0, b1, dw, res, mp, gap, fc],
        )
    }

    #[test]
    fn executor_output_shapes_match_the_network_description() {
        let net = small();
        let exec = HostExecutor::new(&net).unwrap();
        let mut x = HostExecutor::input(net.input);
        for (i, l) in net.layers.iter().enumerate() {
            x = exec.run_layer(i, &x).unwrap();
            let o = l.output();
            assert_eq!(x.dim(), (o.channels, o.height, o.width), "layer {}", l.name);
        }
        assert!(x.iter().all(|v| v.is_finite()));
        assert!(exec.run_layer(99, &x).is_err());
        assert!(exec.run_layer(0, &x).is_err());
        let bad = Network::new(
            net.input,
            vec![Layer::conv("g", net.input, 8, 3, 1, Activation::Relu).with_groups(2)],
        );
        assert!(HostExecutor::new(&bad).is_err());
        assert!(MeasureConfig::new(1, 0).is_err());
    }

    #[test]
    fn host_lut_round_trips_through_the_harmonic_format() {
        let net = small();
        let cfg = MeasureConfig::new(0, 1).unwrap();
        let lut = build_lut(
            std::slice::from_ref(&net),
            KeyScheme::Harmonic,
            &cfg,
            "host",
        )
        .unwrap();
        let expected = net.layers.iter().filter_map(harmonic_key).count();
        let pseudo = net
            .layers
            .iter()
            .filter(|l| harmonic_key(l).is_none())
            .count();
        assert_eq!(lut.len(), expected + pseudo);
        let back =
            LayerLut::from_harmonic_str(&lut.to_harmonic_json(), std::path::Path::new("host.json"))
                .unwrap();
        assert_eq!(back.len(), lut.len());
        let model = LutModel::new(back, KeyScheme::Harmonic).with_free_kinds(&[]);
        let c = model.estimate(&net, &OperatingPoint::default()).unwrap();
        assert!(c.latency_ms > 0.0);
        let b = HostModel::new(cfg)
            .breakdown(&net, &OperatingPoint::default())
            .unwrap();
        assert_eq!(b.layers.len(), net.layers.len());
        assert!(b.total.latency_ms > 0.0);
    }
}
