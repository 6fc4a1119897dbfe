//! The deployed form of a GOS model: every term's bias and batch norm folded into its last
//! convolution or dense product.
//!
//! At inference a batch norm is a per-channel affine map `y * scale + shift` of the product
//! before it, so `scale` can multiply that product's weight and `shift` become its bias: the
//! same function with one operator call fewer per term. Deployment runtimes do this, and run
//! convolutions channels-last on CPU; the host timings (lookup table and interleaved
//! measurements) use that form by default ([`super::ModelForm`]).

use dynas_space::TensorShape;
use tch::{Kind, Tensor};

use super::{BN_EPS, GosModel, LayerModule, Stage, TermModule, check_input, forward_layer};
use dynas_supernet::Result;
use dynas_supernet::elastic::{channels_last, fold_batch_norm, keep_channels_last};

impl Stage {
    /// A copy with its own (detached) tensors.
    fn detached_copy(&self) -> Self {
        Self {
            weight: self.weight.detach().copy(),
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
            dense: self.dense,
            bias: self.bias.as_ref().map(|b| b.detach().copy()),
        }
    }
}

impl TermModule {
    /// This term with its bias and batch norm (running statistics) folded into its last stage.
    pub(super) fn folded(&self) -> TermModule {
        let mut stages: Vec<Stage> = self.stages.iter().map(Stage::detached_copy).collect();
        // `TermModule::new` refuses a term without a product, so there is a last stage.
        if let Some(last) = stages.last_mut()
            && (self.bias.is_some() || self.bn.is_some())
        {
            tch::no_grad(|| self.fold_into(last));
        }
        TermModule {
            stages,
            shuffle: self.shuffle,
            bias: None,
            bn: None,
            activation: self.activation,
            subsample: self.subsample,
        }
    }

    /// Rewrites `last` (a copy of this term's last stage) so that it computes
    /// `bn(shuffle(product) + bias)` before the shuffle.
    fn fold_into(&self, last: &mut Stage) {
        let cout = last.weight.size()[0];
        let options = (Kind::Float, last.weight.device());
        // Per output channel (after the shuffle): y -> y * scale + shift.
        let (mut scale, mut shift) = match &self.bn {
            Some(bn) => fold_batch_norm(
                &bn.running_mean,
                &bn.running_var,
                bn.ws.as_ref(),
                bn.bs.as_ref(),
                BN_EPS,
            ),
            None => (
                Tensor::ones([cout], options),
                Tensor::zeros([cout], options),
            ),
        };
        if let Some(b) = &self.bias {
            shift += b * &scale;
        }
        if let Some(groups) = self.shuffle {
            // Output channel o of the shuffle is product channel perm[o]; product channel c
            // therefore takes the affine map of output channel argsort(perm)[c].
            let perm = Tensor::arange(cout, options)
                .view([1, cout, 1, 1])
                .channel_shuffle(groups)
                .flatten(0, -1)
                .to_kind(Kind::Int64);
            let inverse = perm.argsort(0, false);
            scale = scale.index_select(0, &inverse);
            shift = shift.index_select(0, &inverse);
        }
        let mut shape = vec![1_i64; last.weight.dim()];
        shape[0] = -1;
        let weight = &last.weight * scale.view(shape.as_slice());
        last.bias = Some(match &last.bias {
            Some(b) => b * &scale + shift,
            None => shift,
        });
        last.weight = weight;
    }
}

/// A GOS model in its deployed form ([`GosModel::folded`]): the same function at inference,
/// with each term's bias and batch norm folded into its last convolution or dense product.
/// Inference only; its weights are copies made when it is built, so fold again after
/// training the source model.
#[derive(Debug)]
pub struct FoldedModel {
    input: TensorShape,
    layers: Vec<LayerModule>,
    channels_last: bool,
}

impl GosModel {
    /// The deployed form of this model (see [`FoldedModel`]).
    pub fn folded(&self) -> FoldedModel {
        let layers = self
            .layers
            .iter()
            .map(|layer| match layer {
                LayerModule::Single(t) => LayerModule::Single(t.folded()),
                LayerModule::Residual {
                    a,
                    b,
                    shortcut,
                    activation,
                } => LayerModule::Residual {
                    a: a.folded(),
                    b: b.folded(),
                    shortcut: shortcut.folded(),
                    activation: *activation,
                },
                LayerModule::Pool {
                    kind,
                    kernel,
                    stride,
                } => LayerModule::Pool {
                    kind: *kind,
                    kernel: *kernel,
                    stride: *stride,
                },
                LayerModule::GlobalPool => LayerModule::GlobalPool,
                LayerModule::Identity => LayerModule::Identity,
                LayerModule::Zero { channels, stride } => LayerModule::Zero {
                    channels: *channels,
                    stride: *stride,
                },
            })
            .collect();
        FoldedModel {
            input: self.network.input,
            layers,
            channels_last: false,
        }
    }
}

impl TermModule {
    pub(super) fn make_channels_last(&mut self) {
        for stage in &mut self.stages {
            if stage.weight.dim() == 4 {
                stage.weight = channels_last(&stage.weight);
            }
        }
    }
}

impl FoldedModel {
    /// Stores every convolution weight channels-last and feeds inputs that way (NHWC, the
    /// layout oneDNN prefers on CPU).
    pub fn with_channels_last(mut self) -> Self {
        for layer in &mut self.layers {
            match layer {
                LayerModule::Single(t) => t.make_channels_last(),
                LayerModule::Residual { a, b, shortcut, .. } => {
                    a.make_channels_last();
                    b.make_channels_last();
                    shortcut.make_channels_last();
                }
                _ => {}
            }
        }
        self.channels_last = true;
        self
    }

    /// Logits of a batch `[B, C, H, W]` (checked against the description's input), without
    /// gradients.
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        check_input(self.input, images)?;
        Ok(self.forward_unchecked(images))
    }

    pub(super) fn forward_unchecked(&self, images: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let mut x = if self.channels_last {
                channels_last(images)
            } else {
                images.shallow_clone()
            };
            for layer in &self.layers {
                x = forward_layer(layer, &x, false);
                if self.channels_last {
                    x = keep_channels_last(x);
                }
            }
            x.flatten(1, -1)
        })
    }
}
