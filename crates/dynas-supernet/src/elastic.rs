//! Elastic layers: modules that own the weights of their largest configuration and run any
//! smaller one by slicing views of them, so that gradients reach the shared tensors.
//!
//! * [`ElasticConv2d`]: output / input channels by slicing (`narrow`), kernel size by centre
//!   crop of the largest kernel, optionally through once-for-all's learned kernel transformation
//!   matrices (`7to5_matrix`, `5to3_matrix`, ...). Depthwise when built with `depthwise = true`.
//! * [`ElasticBatchNorm`]: affine parameters and running statistics sliced to the active
//!   channels; in training mode libtorch updates the running-statistics *views* in place, so
//!   only the active channels' statistics move.
//! * [`ElasticLinear`], [`ElasticSe`] (squeeze-and-excitation with elastic mid and squeeze
//!   channels).

use dynas_space::Activation;
use tch::nn::{
    self, Init,
    init::{FanInOut, NonLinearity, NormalOrUniform},
};
use tch::{Kind, Tensor};

use crate::error::{Result, SupernetError};

/// What batch norm does during a forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BnMode {
    /// Training: normalise with batch statistics and update the running statistics with the
    /// layer's momentum.
    Train,
    /// Inference: normalise with the running statistics.
    Eval,
    /// Recalibration: normalise with batch statistics and update the running statistics with
    /// this momentum (1 / (k + 1) on the k-th batch gives the plain average over batches).
    Calibrate(f64),
}

impl BnMode {
    fn batch_stats(self) -> bool {
        !matches!(self, Self::Eval)
    }
}

/// Applies an activation.
pub fn activate(x: &Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::None => x.shallow_clone(),
        Activation::Relu => x.relu(),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::HardSwish => x.hardswish(),
        Activation::Swish => x.silu(),
    }
}

/// A batch norm in evaluation mode as a per-channel map `y * scale + shift`: `(scale, shift)`
/// from its running statistics, optional affine weight and bias, and epsilon.
pub fn fold_batch_norm(
    mean: &Tensor,
    var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> (Tensor, Tensor) {
    let inv_std = (var + eps).rsqrt();
    let scale = match weight {
        Some(w) => w * inv_std,
        None => inv_std,
    };
    let shift = -(mean * &scale);
    let shift = match bias {
        Some(b) => shift + b,
        None => shift,
    };
    (scale, shift)
}

/// `t` (`[N, C, H, W]`) with channels-last strides: same sizes and values, the layout oneDNN
/// runs fastest on CPU.
pub fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// `x` in channels-last if it is a multi-channel image batch that is not. libtorch returns a
/// convolution over one input channel in NCHW (a 1-channel input is both layouts); the next
/// layer would then run its slower NCHW path, which the lookup table, timing each operator
/// on channels-last input, never sees.
pub fn keep_channels_last(x: Tensor) -> Tensor {
    if x.dim() == 4 && x.size()[1] > 1 && x.stride()[1] != 1 {
        channels_last(&x)
    } else {
        x
    }
}

/// He (fan-out, normal) initialisation, as once-for-all initialises its convs.
pub(crate) const CONV_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

fn too_large(what: &str, asked: i64, max: i64) -> SupernetError {
    SupernetError::Incompatible(format!("{what} {asked} exceeds the supernet's {max}"))
}

/// An elastic 2-D convolution (standard or depthwise), "same" padding.
#[derive(Debug)]
pub struct ElasticConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    /// `(source kernel, target kernel, matrix)` in decreasing source order.
    transforms: Vec<(i64, i64, Tensor)>,
    kernel_choices: Vec<i64>,
    max_out: i64,
    max_in: i64,
    max_kernel: i64,
    depthwise: bool,
}

impl ElasticConv2d {
    /// A conv of at most `max_in -> max_out` channels and kernel `max(kernel_choices)`.
    ///
    /// Parameters: `p / "weight"` (`[max_out, max_in, k, k]`, or `[max_out, 1, k, k]` when
    /// depthwise), `p / "bias"` when `bias`, and with `kernel_transform` one identity-initialised
    /// matrix `p / "{k}to{k'}_matrix"` per pair of consecutive kernel choices.
    pub fn new(
        p: &nn::Path<'_>,
        max_in: usize,
        max_out: usize,
        kernel_choices: &[usize],
        depthwise: bool,
        bias: bool,
        kernel_transform: bool,
    ) -> Result<Self> {
        let mut kernels: Vec<i64> = kernel_choices.iter().map(|&k| k as i64).collect();
        kernels.sort_unstable();
        kernels.dedup();
        let max_kernel = *kernels
            .last()
            .ok_or_else(|| SupernetError::invalid("kernel_choices", "no kernel sizes"))?;
        if kernels.iter().any(|k| k % 2 == 0) {
            return Err(SupernetError::invalid(
                "kernel_choices",
                format!("kernel sizes must be odd, got {kernels:?}"),
            ));
        }
        if depthwise && max_in != max_out {
            return Err(SupernetError::invalid(
                "channels",
                "a depthwise conv has as many outputs as inputs",
            ));
        }
        let (max_in, max_out) = (max_in as i64, max_out as i64);
        let in_dim = if depthwise { 1 } else { max_in };
        let weight = p.var(
            "weight",
            &[max_out, in_dim, max_kernel, max_kernel],
            CONV_INIT,
        );
        let bias = bias.then(|| p.zeros("bias", &[max_out]));
        let mut transforms = Vec::new();
        if kernel_transform {
            for pair in kernels.windows(2).rev() {
                let (small, large) = (pair[0], pair[1]);
                let eye = Tensor::eye(small * small, (Kind::Float, p.device()));
                let matrix = p.var_copy(&format!("{large}to{small}_matrix"), &eye);
                transforms.push((large, small, matrix));
            }
        }
        Ok(Self {
            weight,
            bias,
            transforms,
            kernel_choices: kernels,
            max_out,
            max_in,
            max_kernel,
            depthwise,
        })
    }

    /// Largest output channels.
    pub fn max_out(&self) -> usize {
        self.max_out as usize
    }

    /// Largest input channels.
    pub fn max_in(&self) -> usize {
        self.max_in as usize
    }

    /// Whether the conv is depthwise (one input channel per output).
    pub fn is_depthwise(&self) -> bool {
        self.depthwise
    }

    /// Kernel sizes this conv can run.
    pub fn kernel_choices(&self) -> Vec<usize> {
        self.kernel_choices.iter().map(|&k| k as usize).collect()
    }

    /// The active weight for `out` outputs, `inp` inputs and kernel `k`: a view of the shared
    /// weight (centre crop), or with kernel transformation the transformed crop, differentiable
    /// with respect to the shared weight and the matrices.
    pub fn active_weight(&self, out: i64, inp: i64, k: i64) -> Result<Tensor> {
        if out > self.max_out {
            return Err(too_large("output channels", out, self.max_out));
        }
        if inp > self.max_in {
            return Err(too_large("input channels", inp, self.max_in));
        }
        if self.depthwise && out != inp {
            return Err(SupernetError::Incompatible(format!(
                "depthwise conv with {inp} inputs asked for {out} outputs"
            )));
        }
        if !self.kernel_choices.contains(&k) {
            return Err(SupernetError::Incompatible(format!(
                "kernel {k} is not among the choices {:?}",
                self.kernel_choices
            )));
        }
        let mut w = self.weight.narrow(0, 0, out);
        if !self.depthwise {
            w = w.narrow(1, 0, inp);
        }
        if self.transforms.is_empty() || k == self.max_kernel {
            let start = (self.max_kernel - k) / 2;
            return Ok(w.narrow(2, start, k).narrow(3, start, k));
        }
        for (large, small, matrix) in &self.transforms {
            if *large <= k {
                break;
            }
            let start = (large - small) / 2;
            let crop = w
                .narrow(2, start, *small)
                .narrow(3, start, *small)
                .contiguous();
            let (o, i) = (crop.size()[0], crop.size()[1]);
            w = crop
                .reshape([o * i, small * small])
                .linear::<&Tensor>(matrix, None)
                .reshape([o, i, *small, *small]);
        }
        Ok(w)
    }

    /// The active bias for `out` outputs.
    pub fn active_bias(&self, out: i64) -> Option<Tensor> {
        self.bias.as_ref().map(|b| b.narrow(0, 0, out))
    }

    /// Runs the conv with `out` output channels, kernel `k` and `stride`; input channels are
    /// those of `x`.
    pub fn forward(&self, x: &Tensor, out: i64, k: i64, stride: i64) -> Result<Tensor> {
        let inp = x.size()[1];
        let w = self.active_weight(out, inp, k)?;
        let groups = if self.depthwise { inp } else { 1 };
        Ok(x.conv2d(
            &w,
            self.active_bias(out).as_ref(),
            [stride, stride],
            [k / 2, k / 2],
            [1, 1],
            groups,
        ))
    }
}

/// Elastic batch norm over at most `max_channels` channels.
#[derive(Debug)]
pub struct ElasticBatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    eps: f64,
}

impl ElasticBatchNorm {
    /// Parameters `p / "weight"`, `p / "bias"` and buffers `p / "running_mean"`,
    /// `p / "running_var"` (not trainable).
    pub fn new(p: &nn::Path<'_>, max_channels: usize, momentum: f64, eps: f64) -> Self {
        let c = max_channels as i64;
        Self {
            weight: p.ones("weight", &[c]),
            bias: p.zeros("bias", &[c]),
            running_mean: p.zeros_no_train("running_mean", &[c]),
            running_var: p.ones_no_train("running_var", &[c]),
            momentum,
            eps,
        }
    }

    /// Largest channel count.
    pub fn max_channels(&self) -> usize {
        self.weight.size()[0] as usize
    }

    /// Views of the running mean and variance of the first `c` channels.
    pub fn running_stats(&self, c: i64) -> (Tensor, Tensor) {
        (
            self.running_mean.narrow(0, 0, c),
            self.running_var.narrow(0, 0, c),
        )
    }

    /// Views of the scale and shift of the first `c` channels.
    pub fn affine(&self, c: i64) -> (Tensor, Tensor) {
        (self.weight.narrow(0, 0, c), self.bias.narrow(0, 0, c))
    }

    /// The evaluation-mode map of the first `c` channels as `y * scale + shift` (running
    /// statistics): what folding the batch norm into the conv before it multiplies and adds.
    pub fn folded_affine(&self, c: i64) -> (Tensor, Tensor) {
        let (mean, var) = self.running_stats(c);
        let (weight, bias) = self.affine(c);
        fold_batch_norm(&mean, &var, Some(&weight), Some(&bias), self.eps)
    }

    /// Normalises `x` over its channels (which must not exceed the maximum).
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let c = x.size()[1];
        let max = self.weight.size()[0];
        if c > max {
            return Err(too_large("batch-norm channels", c, max));
        }
        let momentum = match mode {
            BnMode::Calibrate(m) => m,
            _ => self.momentum,
        };
        let (rm, rv) = self.running_stats(c);
        Ok(x.batch_norm(
            Some(&self.weight.narrow(0, 0, c)),
            Some(&self.bias.narrow(0, 0, c)),
            Some(&rm),
            Some(&rv),
            mode.batch_stats(),
            momentum,
            self.eps,
            false,
        ))
    }
}

/// Elastic fully connected layer.
#[derive(Debug)]
pub struct ElasticLinear {
    weight: Tensor,
    bias: Tensor,
}

impl ElasticLinear {
    /// Parameters `p / "weight"` (`[max_out, max_in]`, uniform in `+-1/sqrt(max_in)`) and
    /// `p / "bias"` (zeros).
    pub fn new(p: &nn::Path<'_>, max_in: usize, max_out: usize) -> Self {
        let bound = 1.0 / (max_in as f64).sqrt();
        Self {
            weight: p.var(
                "weight",
                &[max_out as i64, max_in as i64],
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            ),
            bias: p.zeros("bias", &[max_out as i64]),
        }
    }

    /// Active weight and bias for `out` outputs and `inp` inputs.
    pub fn active(&self, out: i64, inp: i64) -> Result<(Tensor, Tensor)> {
        let (mo, mi) = (self.weight.size()[0], self.weight.size()[1]);
        if out > mo {
            return Err(too_large("linear outputs", out, mo));
        }
        if inp > mi {
            return Err(too_large("linear inputs", inp, mi));
        }
        Ok((
            self.weight.narrow(0, 0, out).narrow(1, 0, inp),
            self.bias.narrow(0, 0, out),
        ))
    }

    /// `x [B, in] -> [B, out]`.
    pub fn forward(&self, x: &Tensor, out: i64) -> Result<Tensor> {
        let (w, b) = self.active(out, x.size()[1])?;
        Ok(x.linear(&w, Some(&b)))
    }
}

/// Elastic squeeze-and-excitation (ReLU after the reduction, hard sigmoid gate), as in
/// once-for-all's `DynamicSE`.
#[derive(Debug)]
pub struct ElasticSe {
    /// 1x1 reduction conv (`p / "reduce"`).
    pub reduce: ElasticConv2d,
    /// 1x1 expansion conv (`p / "expand"`).
    pub expand: ElasticConv2d,
}

impl ElasticSe {
    /// An SE module for at most `max_channels` channels and `max_squeeze` squeeze channels.
    pub fn new(p: &nn::Path<'_>, max_channels: usize, max_squeeze: usize) -> Result<Self> {
        Ok(Self {
            reduce: ElasticConv2d::new(
                &(p / "reduce"),
                max_channels,
                max_squeeze,
                &[1],
                false,
                true,
                false,
            )?,
            expand: ElasticConv2d::new(
                &(p / "expand"),
                max_squeeze,
                max_channels,
                &[1],
                false,
                true,
                false,
            )?,
        })
    }

    /// Gates `x` channel-wise using `squeeze` squeeze channels.
    pub fn forward(&self, x: &Tensor, squeeze: i64) -> Result<Tensor> {
        let c = x.size()[1];
        let y = x.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
        let y = self.reduce.forward(&y, squeeze, 1, 1)?.relu();
        let y = self.expand.forward(&y, c, 1, 1)?.hardsigmoid();
        Ok(x * y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn activations_are_kept_channels_last() {
        let opts = (Kind::Float, Device::Cpu);
        // What libtorch returns for a convolution over one input channel: NCHW.
        let image = channels_last(&Tensor::randn([1, 1, 6, 6], opts));
        let weight = channels_last(&Tensor::randn([4, 1, 3, 3], opts));
        let nchw = image.conv2d(&weight, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let kept = keep_channels_last(nchw.shallow_clone());
        assert_eq!(kept.stride()[1], 1, "channels innermost");
        assert!(kept.allclose(&nchw, 0.0, 0.0, false), "same values");
        // Already channels-last, one channel, or flat: left as they are.
        let last = channels_last(&Tensor::randn([2, 3, 4, 4], opts));
        assert_eq!(
            keep_channels_last(last.shallow_clone()).stride(),
            last.stride()
        );
        let one = Tensor::randn([2, 1, 4, 4], opts);
        assert_eq!(
            keep_channels_last(one.shallow_clone()).stride(),
            one.stride()
        );
        let flat = Tensor::randn([2, 8], opts);
        assert_eq!(
            keep_channels_last(flat.shallow_clone()).stride(),
            flat.stride()
        );
    }

    #[test]
    fn kernel_centre_crop_and_channel_slicing_are_views_of_the_shared_weight() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv =
            ElasticConv2d::new(&(vs.root() / "c"), 4, 6, &[3, 5], false, false, false).unwrap();
        let w = conv.active_weight(2, 3, 3).unwrap();
        assert_eq!(w.size(), vec![2, 3, 3, 3]);
        let full = &conv.weight;
        assert!(
            w.allclose(
                &full
                    .narrow(0, 0, 2)
                    .narrow(1, 0, 3)
                    .narrow(2, 1, 3)
                    .narrow(3, 1, 3),
                0.0,
                0.0,
                false
            )
        );
        // Gradients flow into the shared weight, only where the slice is.
        let x = Tensor::ones([1, 3, 5, 5], (Kind::Float, Device::Cpu));
        conv.forward(&x, 2, 3, 1)
            .unwrap()
            .sum(Kind::Float)
            .backward();
        let g = full.grad();
        assert!(g.narrow(0, 2, 4).abs().sum(Kind::Float).double_value(&[]) == 0.0);
        assert!(g.narrow(1, 3, 1).abs().sum(Kind::Float).double_value(&[]) == 0.0);
        assert!(
            g.narrow(0, 0, 2)
                .narrow(1, 0, 3)
                .narrow(2, 1, 3)
                .narrow(3, 1, 3)
                .abs()
                .sum(Kind::Float)
                .double_value(&[])
                > 0.0
        );
        assert!(conv.active_weight(7, 3, 3).is_err());
        assert!(conv.active_weight(2, 3, 7).is_err());
    }

    #[test]
    fn kernel_transform_starts_as_identity_and_is_trainable() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv =
            ElasticConv2d::new(&(vs.root() / "dw"), 4, 4, &[3, 5, 7], true, false, true).unwrap();
        assert!(vs.variables().contains_key("dw.7to5_matrix"));
        assert!(vs.variables().contains_key("dw.5to3_matrix"));
        let plain = conv.weight.narrow(2, 2, 3).narrow(3, 2, 3);
        let transformed = conv.active_weight(4, 4, 3).unwrap();
        assert!(transformed.allclose(&plain, 1e-6, 1e-6, false));
        transformed.sum(Kind::Float).backward();
        let (_, _, m) = &conv.transforms[1];
        assert!(m.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn batch_norm_updates_only_the_active_running_statistics() {
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = ElasticBatchNorm::new(&(vs.root() / "bn"), 6, 0.5, 1e-5);
        let x = Tensor::randn([8, 4, 3, 3], (Kind::Float, Device::Cpu)) + 3.0;
        let _ = bn.forward(&x, BnMode::Train).unwrap();
        let mean = Vec::<f32>::try_from(&bn.running_mean).unwrap();
        assert!(mean[..4].iter().all(|&m| m > 1.0));
        assert_eq!(&mean[4..], &[0.0, 0.0]);
        let var = Vec::<f32>::try_from(&bn.running_var).unwrap();
        assert_eq!(&var[4..], &[1.0, 1.0]);
        // Calibration with momentum 1 replaces the statistics by the batch's.
        let _ = bn.forward(&x, BnMode::Calibrate(1.0)).unwrap();
        let batch_mean = x.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float);
        assert!(
            bn.running_stats(4)
                .0
                .allclose(&batch_mean, 1e-5, 1e-5, false)
        );
        assert!(
            bn.forward(
                &Tensor::zeros([1, 7, 1, 1], (Kind::Float, Device::Cpu)),
                BnMode::Eval
            )
            .is_err()
        );
    }

    #[test]
    fn linear_and_se_slice() {
        let vs = nn::VarStore::new(Device::Cpu);
        let lin = ElasticLinear::new(&(vs.root() / "fc"), 8, 5);
        let x = Tensor::randn([2, 6], (Kind::Float, Device::Cpu));
        let y = lin.forward(&x, 3).unwrap();
        let full = x.linear(&lin.weight.narrow(1, 0, 6), Some(&lin.bias));
        assert!(y.allclose(&full.narrow(1, 0, 3), 1e-6, 1e-6, false));
        let se = ElasticSe::new(&(vs.root() / "se"), 16, 8).unwrap();
        let x = Tensor::randn([2, 12, 3, 3], (Kind::Float, Device::Cpu));
        assert_eq!(se.forward(&x, 4).unwrap().size(), vec![2, 12, 3, 3]);
        assert!(se.forward(&x, 9).is_err());
    }
}
