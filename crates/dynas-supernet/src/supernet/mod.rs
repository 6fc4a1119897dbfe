//! The weight-sharing supernet of an [`MbConvSpace`] and standalone subnets extracted from it.
//!
//! The supernet owns one elastic module per *layer name* of the space's largest network
//! (`first_conv`, `first_block`, `<stage>.block<j>`, `final_expand`, `global_pool`,
//! `feature_mix`, `classifier`; see `dynas_space::mbconv`). A subnet is run by walking the
//! layers of its [`Network`] and running each named module at that layer's geometry
//! (channels, expanded channels, kernel, stride, squeeze channels): blocks beyond a stage's
//! depth are simply absent (depth skipping), channel choices of every kind (widths, expand
//! ratios: GoldenNAS's dynamic channel scaling) slice the first channels of the shared tensors,
//! kernels are centre crops (optionally transformed), and the input is resized to the
//! subnet's resolution.
//!
//! Parameter paths mirror layer names: `stage1.block2.dw.conv.weight`,
//! `stage1.block2.dw.conv.7to5_matrix`, `first_conv.bn.running_mean`, `classifier.weight`, ...

use std::collections::HashMap;
use std::path::Path;

use dynas_space::{Genotype, Layer, MbConvSpace, Network, OpKind, SearchSpace};
use tch::{Device, Kind, Tensor, nn};

use crate::elastic::BnMode;
use crate::error::{Result, SupernetError};

mod deployed;
mod modules;

pub use deployed::DeployedSubnet;

use modules::{Body, copy};

/// Checked construction options of a [`Supernet`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SupernetConfig {
    kernel_transform: bool,
    bn_momentum: f64,
    bn_eps: f64,
}

impl Default for SupernetConfig {
    fn default() -> Self {
        Self {
            kernel_transform: true,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
        }
    }
}

impl SupernetConfig {
    /// Validated options: `bn_momentum` in `(0, 1]`, `bn_eps > 0`.
    pub fn new(kernel_transform: bool, bn_momentum: f64, bn_eps: f64) -> Result<Self> {
        if !(bn_momentum > 0.0 && bn_momentum <= 1.0) {
            return Err(SupernetError::invalid(
                "bn_momentum",
                format!("{bn_momentum} is not in (0, 1]"),
            ));
        }
        if !(bn_eps > 0.0 && bn_eps.is_finite()) {
            return Err(SupernetError::invalid(
                "bn_eps",
                format!("{bn_eps} is not a positive number"),
            ));
        }
        Ok(Self {
            kernel_transform,
            bn_momentum,
            bn_eps,
        })
    }

    /// Whether depthwise kernels use once-for-all's kernel transformation matrices.
    pub fn kernel_transform(&self) -> bool {
        self.kernel_transform
    }

    /// Batch-norm momentum during training.
    pub fn bn_momentum(&self) -> f64 {
        self.bn_momentum
    }

    /// Batch-norm epsilon.
    pub fn bn_eps(&self) -> f64 {
        self.bn_eps
    }
}

/// Running statistics of the batch norms one subnet uses, by parameter path.
#[derive(Debug)]
pub struct BnStats {
    /// `(batch-norm path, running mean, running variance)`, copies detached from the supernet.
    pub entries: Vec<(String, Tensor, Tensor)>,
}

impl Clone for BnStats {
    fn clone(&self) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .map(|(n, m, v)| (n.clone(), m.copy(), v.copy()))
                .collect(),
        }
    }
}

/// A weight-sharing supernet over every subnet of an [`MbConvSpace`].
#[derive(Debug)]
pub struct Supernet {
    vs: nn::VarStore,
    space: MbConvSpace,
    body: Body,
    config: SupernetConfig,
}

impl Supernet {
    /// Builds the supernet of `space` on `device`, initialised from libtorch's generator (seed
    /// it with `tch::manual_seed` for reproducible weights).
    pub fn new(space: MbConvSpace, config: SupernetConfig, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let largest = space.decode(&space.largest())?;
        // The space says which stage and position each block has; names are only keys.
        let slots: HashMap<String, (usize, usize)> = space
            .block_slots()
            .into_iter()
            .map(|slot| (slot.name, (slot.stage, slot.block)))
            .collect();
        let stages = space.stages();
        let kernels = |layer: &Layer| -> Vec<usize> {
            match slots.get(&layer.name) {
                Some(&(stage, _)) => stages[stage].kernels.clone(),
                None => vec![layer.kernel],
            }
        };
        // A block may change width (and so need its projection shortcut) when it is the first
        // of its stage or when the largest network already changes width there.
        let shortcut = |l: &Layer| {
            let first_of_stage = matches!(slots.get(&l.name), Some(&(_, 0)));
            l.projection_shortcut && (l.has_projection_shortcut() || first_of_stage)
        };
        let body = Body::build(
            &vs.root(),
            &largest,
            &kernels,
            config.kernel_transform,
            &shortcut,
            &config,
        )?;
        Ok(Self {
            vs,
            space,
            body,
            config,
        })
    }

    /// The search space.
    pub fn space(&self) -> &MbConvSpace {
        &self.space
    }

    /// Construction options.
    pub fn config(&self) -> &SupernetConfig {
        &self.config
    }

    /// The variables (parameters and batch-norm buffers).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Mutable access to the variables (e.g. to load weights).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The network of a genotype.
    pub fn network(&self, genotype: &Genotype) -> Result<Network> {
        Ok(self.space.decode(genotype)?)
    }

    /// Runs the subnet described by `net` (a network of this space) on `x` (`[B, C, H, W]`,
    /// resized to the subnet's resolution when needed); returns logits.
    pub fn forward(&self, net: &Network, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.body.forward(net, x, mode)
    }

    /// Runs the subnet of `genotype`.
    pub fn forward_genotype(
        &self,
        genotype: &Genotype,
        x: &Tensor,
        mode: BnMode,
    ) -> Result<Tensor> {
        let net = self.network(genotype)?;
        self.forward(&net, x, mode)
    }

    /// Builds a standalone network for `net` with its weights and batch-norm statistics copied
    /// out of the supernet (kernel transformations applied), on the supernet's device.
    pub fn extract(&self, net: &Network) -> Result<Subnet> {
        let vs = nn::VarStore::new(self.device());
        let body = Body::build(
            &vs.root(),
            net,
            &|l: &Layer| vec![l.kernel],
            false,
            &Layer::has_projection_shortcut,
            &self.config,
        )?;
        self.body.copy_into(&body, net)?;
        Ok(Subnet {
            vs,
            body,
            network: net.clone(),
        })
    }

    /// [`Supernet::extract`] for a genotype.
    pub fn extract_genotype(&self, genotype: &Genotype) -> Result<Subnet> {
        self.extract(&self.network(genotype)?)
    }

    /// Copies of the running statistics of the batch norms `net` uses.
    pub fn bn_stats(&self, net: &Network) -> Result<BnStats> {
        Ok(BnStats {
            entries: self
                .body
                .batch_norms(net)?
                .into_iter()
                .map(|(name, bn, c)| {
                    let (m, v) = bn.running_stats(c);
                    (name, m.detach().copy(), v.detach().copy())
                })
                .collect(),
        })
    }

    /// Writes stored running statistics back into the supernet (the Dynamic-OFA switch:
    /// no recalibration needed).
    pub fn load_bn_stats(&self, net: &Network, stats: &BnStats) -> Result<()> {
        let bns = self.body.batch_norms(net)?;
        if bns.len() != stats.entries.len() {
            return Err(SupernetError::Incompatible(format!(
                "statistics for {} batch norms, the subnet has {}",
                stats.entries.len(),
                bns.len()
            )));
        }
        for ((name, bn, c), (sname, m, v)) in bns.iter().zip(&stats.entries) {
            if name != sname {
                return Err(SupernetError::Incompatible(format!(
                    "statistics for `{sname}` where the subnet has `{name}`"
                )));
            }
            let (rm, rv) = bn.running_stats(*c);
            copy(&rm, m)?;
            copy(&rv, v)?;
        }
        Ok(())
    }

    /// Adaptive batch norm: re-estimates the running statistics of the batch norms `net` uses
    /// as the average of the batch statistics over the given batches (no gradients).
    /// Returns the number of batches used.
    pub fn recalibrate_bn(
        &self,
        net: &Network,
        batches: impl IntoIterator<Item = crate::data::Batch>,
    ) -> Result<usize> {
        let mut n = 0usize;
        tch::no_grad(|| -> Result<()> {
            for batch in batches {
                let momentum = 1.0 / (n as f64 + 1.0);
                let _ = self.forward(net, &batch.images, BnMode::Calibrate(momentum))?;
                n += 1;
            }
            Ok(())
        })?;
        Ok(n)
    }

    /// Saves all variables to a safetensors file, atomically (a temporary file next to it is
    /// written, synced and renamed over it).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save_var_store(&self.vs, path.as_ref())
    }

    /// Loads variables saved by [`Supernet::save`] (every variable must be present with its
    /// shape, and every value finite). The whole file is read and checked before any variable
    /// is overwritten, so a failed load leaves the supernet as it was.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::load_into(&self.vs, path.as_ref(), "")
    }
}

/// A standalone network extracted from a supernet: its own variables at exactly the subnet's
/// size.
#[derive(Debug)]
pub struct Subnet {
    vs: nn::VarStore,
    body: Body,
    network: Network,
}

impl Subnet {
    /// A randomly initialised standalone network for `net` (used to time architectures).
    pub fn random(net: &Network, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let body = Body::build(
            &vs.root(),
            net,
            &|l: &Layer| vec![l.kernel],
            false,
            &Layer::has_projection_shortcut,
            &SupernetConfig::default(),
        )?;
        Ok(Self {
            vs,
            body,
            network: net.clone(),
        })
    }

    /// The architecture.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Its variables.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Mutable access to its variables.
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// Number of parameters (batch-norm buffers excluded).
    pub fn num_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64
    }

    /// Logits for `x`.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.body.forward(&self.network, x, mode)
    }

    /// Inference without gradients (batch norm in evaluation mode).
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.forward(x, BnMode::Eval))
    }

    /// Saves the weights (safetensors when the extension is `.safetensors`), atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save_var_store(&self.vs, path.as_ref())
    }

    /// Element kind of the weights.
    pub fn kind(&self) -> Kind {
        self.vs.kind()
    }

    /// Number of feature layers: those before the first global pooling. They are the blocks an
    /// early exit can follow ([`dynas_exits::Backbone`]); the rest is the classifier.
    pub fn num_feature_layers(&self) -> usize {
        feature_layers(&self.network)
    }
}

/// Layers of `network` before its first global pooling: the blocks of its early-exit backbone,
/// extracted ([`Subnet`]) or deployed ([`DeployedSubnet`]) alike.
pub(crate) fn feature_layers(network: &Network) -> usize {
    network
        .layers
        .iter()
        .position(|l| l.kind == OpKind::GlobalAvgPool)
        .unwrap_or(network.layers.len())
}

/// Output channels of backbone block `block` of `network` (0 past its end).
pub(crate) fn block_channels(network: &Network, block: usize) -> i64 {
    network
        .layers
        .get(block)
        .map_or(0, |l| l.out_channels as i64)
}

fn exit_error(e: SupernetError) -> dynas_exits::ExitError {
    dynas_exits::ExitError::Backbone(Box::new(e))
}

/// An extracted subnet as an early-exit backbone: block `i` is layer `i` of its network (first
/// conv, MBConv blocks, final 1x1 convs), up to the global pooling; the classifier is the rest.
/// Blocks run with batch norm in evaluation mode; block `0` resizes the input to the subnet's
/// resolution.
impl dynas_exits::Backbone for Subnet {
    fn num_blocks(&self) -> usize {
        self.num_feature_layers()
    }

    fn block_channels(&self, block: usize) -> i64 {
        block_channels(&self.network, block)
    }

    fn forward_block(&self, block: usize, x: &Tensor) -> dynas_exits::Result<Tensor> {
        let blocks = self.num_feature_layers();
        if block >= blocks {
            return Err(dynas_exits::ExitError::invalid(
                "block",
                format!("{block} is not one of the subnet's {blocks} feature layers"),
            ));
        }
        let layer = &self.network.layers[block];
        let input = if block == 0 {
            Body::prepare_input(&self.network, x).map_err(exit_error)?
        } else {
            x.shallow_clone()
        };
        self.body
            .forward_layer(layer, &input, BnMode::Eval)
            .map_err(exit_error)
    }

    fn classify(&self, features: &Tensor) -> dynas_exits::Result<Tensor> {
        let mut x = features.shallow_clone();
        for layer in &self.network.layers[self.num_feature_layers()..] {
            x = self
                .body
                .forward_layer(layer, &x, BnMode::Eval)
                .map_err(exit_error)?;
        }
        Ok(x)
    }

    fn network(&self) -> Network {
        self.network.clone()
    }
}
