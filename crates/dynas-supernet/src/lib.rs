//! Weight-sharing supernet on tch (libtorch): elastic layers, once-for-all / BigNAS-style
//! training, adaptive batch norm, subnet extraction and an accuracy oracle for the search.
//!
//! ```no_run
//! use dynas_space::{MbConvSpace, SearchSpace};
//! use dynas_supernet::{BnMode, Supernet, SupernetConfig};
//! # fn main() -> dynas_supernet::Result<()> {
//! tch::manual_seed(0);
//! let space = MbConvSpace::ofa_mnist();
//! let supernet = Supernet::new(space.clone(), SupernetConfig::default(), tch::Device::cuda_if_available())?;
//! let net = space.decode(&space.smallest())?;
//! let x = tch::Tensor::zeros([2, 1, 28, 28], (tch::Kind::Float, supernet.device()));
//! let logits = supernet.forward(&net, &x, BnMode::Eval)?;
//! let standalone = supernet.extract(&net)?; // same outputs, own weights
//! # let _ = (logits, standalone); Ok(()) }
//! ```

pub mod bundle;
pub mod checkpoint;
pub mod data;
mod dynamic;
pub mod elastic;
pub mod error;
pub mod latency;
pub mod oracle;
pub mod supernet;
pub mod train;

/// The libtorch bindings this crate is built on (the same version for callers).
pub use tch;

pub use data::{Augmentation, Batch, CifarLabels, Dataset, Normalization, Split, SplitRecord};
pub use dynamic::ExitPlan;
pub use elastic::BnMode;
pub use error::{Result, SupernetError};
pub use latency::HostLatencyModel;
pub use oracle::{
    AccuracyEstimator, AccuracySample, BnStore, write_samples_csv, write_samples_json,
};
pub use supernet::{BnStats, DeployedSubnet, Subnet, Supernet, SupernetConfig};
pub use train::{
    ElasticDim, EpochStats, Phase, Schedule, Sgd, SubnetSampler, TrainConfig, TrainParams, Trainer,
    cosine_lr, evaluate,
};

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor, nn, nn::Module};

    #[test]
    fn small_conv_net_forward() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root();
        let net = nn::seq()
            .add(nn::conv2d(&p / "conv1", 1, 8, 3, Default::default()))
            .add_fn(|x| x.relu());
        let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = net.forward(&x);
        assert_eq!(y.size(), vec![2, 8, 6, 6]);
    }
}
