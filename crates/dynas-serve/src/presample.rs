//! Dynamic-OFA pre-sampling: from a trained supernet, sample many subnets, score each on a
//! **validation** split (batch norm recalibrated and stored per subnet), time each on this host
//! through libtorch (batch 1, at one or more thread counts), and keep the Pareto family
//! (validation top-1 max, host latency min) at the requested size as a
//! [`Deployment`] with method `"dynamic-ofa"`.
//!
//! The per-subnet batch-norm statistics of the family are returned in a [`BnStore`], so the
//! runtime ([`mod@crate::runtime`]) switches members without recalibrating.

use std::collections::BTreeMap;
use std::time::Instant;

use dynas_core::{DeployedMetrics, Deployment, DeploymentPoint, Provenance};
use dynas_cost::{CostModel, OperatingPoint};
use dynas_space::{Genotype, MbConvGene, MbConvSpace, SearchSpace, seeded_rng};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use dynas_supernet::data::{Dataset, Normalization};
use dynas_supernet::oracle::{AccuracyEstimator, BnStore};
use dynas_supernet::supernet::{DeployedSubnet, Supernet};
use dynas_supernet::{Result, SupernetError};

/// Hyper-parameters of [`presample`] (unchecked; see [`PresampleParams::check`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresampleParams {
    /// Subnets scored (the smallest and largest included), at least `family_size`.
    pub samples: usize,
    /// Largest family kept (at least 2; fewer when the Pareto front is smaller).
    pub family_size: usize,
    /// libtorch intra-op thread counts the latency is measured at (each >= 1).
    pub threads: Vec<i32>,
    /// The thread count whose latency goes into the deployment (one of `threads`).
    pub serve_threads: i32,
    /// Untimed runs before timing.
    pub warmup: usize,
    /// Timed runs (the median is kept), at least 1.
    pub repeats: usize,
    /// Batch-norm recalibration batches per subnet (from the calibration set), at least 1.
    pub calibration_batches: usize,
    /// Batch size of recalibration and validation, at least 1.
    pub batch_size: usize,
    /// Seed of the subnet sampling and of the calibration batches.
    pub seed: u64,
}

impl Default for PresampleParams {
    /// 60 samples, a family of 6, timed at 1 and 2 threads (deployment: 1 thread), 5 warm-up
    /// and 30 timed runs, 10 recalibration batches of 256, seed 0.
    fn default() -> Self {
        Self {
            samples: 60,
            family_size: 6,
            threads: vec![1, 2],
            serve_threads: 1,
            warmup: 5,
            repeats: 30,
            calibration_batches: 10,
            batch_size: 256,
            seed: 0,
        }
    }
}

/// Checked [`PresampleParams`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckedPresampleParams(PresampleParams);

impl CheckedPresampleParams {
    /// The parameters.
    pub fn params(&self) -> &PresampleParams {
        &self.0
    }
}

impl PresampleParams {
    /// Validates every field.
    pub fn check(self) -> Result<CheckedPresampleParams> {
        if self.family_size < 2 {
            return Err(SupernetError::invalid("family_size", "must be at least 2"));
        }
        if self.samples < self.family_size {
            return Err(SupernetError::invalid(
                "samples",
                format!(
                    "{} is fewer than family_size {}",
                    self.samples, self.family_size
                ),
            ));
        }
        if self.threads.is_empty() || self.threads.iter().any(|&t| t < 1) {
            return Err(SupernetError::invalid(
                "threads",
                "needs at least one thread count, each >= 1",
            ));
        }
        if !self.threads.contains(&self.serve_threads) {
            return Err(SupernetError::invalid(
                "serve_threads",
                format!(
                    "{} is not one of threads {:?}",
                    self.serve_threads, self.threads
                ),
            ));
        }
        if self.repeats == 0 {
            return Err(SupernetError::invalid("repeats", "must be at least 1"));
        }
        if self.calibration_batches == 0 {
            return Err(SupernetError::invalid(
                "calibration_batches",
                "must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(SupernetError::invalid("batch_size", "must be at least 1"));
        }
        Ok(CheckedPresampleParams(self))
    }
}

/// One scored subnet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresampledSubnet {
    /// The subnet.
    pub genotype: Genotype,
    /// Human-readable choices.
    pub description: String,
    /// Validation top-1, in `[0, 1]`.
    pub accuracy: f64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Median host latency at batch 1, ms, by libtorch thread count.
    pub latency_ms: BTreeMap<i32, f64>,
}

/// What [`presample`] found.
#[derive(Debug)]
pub struct Presampled {
    /// Every scored subnet, in sampling order.
    pub samples: Vec<PresampledSubnet>,
    /// Indices into `samples` of the family, fastest first.
    pub family: Vec<usize>,
    /// Size of the whole Pareto front the family was chosen from.
    pub front_size: usize,
    /// The family as a deployment (method `"dynamic-ofa"`).
    pub deployment: Deployment,
    /// Recalibrated batch-norm statistics of the family members.
    pub bn: BnStore,
}

impl Presampled {
    /// The family's members.
    pub fn members(&self) -> impl Iterator<Item = &PresampledSubnet> {
        self.family.iter().map(|&i| &self.samples[i])
    }

    /// Slowest over fastest member latency at the serving thread count.
    pub fn latency_span(&self, threads: i32) -> Option<f64> {
        let lat: Vec<f64> = self
            .members()
            .filter_map(|m| m.latency_ms.get(&threads).copied())
            .collect();
        let (lo, hi) = lat
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        (lo > 0.0 && lo.is_finite()).then(|| hi / lo)
    }
}

/// Median batch-1 latency (ms) of a subnet in the deployed form the runtime keeps resident
/// ([`dynas_supernet::Subnet::deployed`]), at the current libtorch thread count.
pub fn time_subnet(subnet: &DeployedSubnet, warmup: usize, repeats: usize) -> Result<f64> {
    let i = subnet.network().input;
    let x = Tensor::randn(
        [1, i.channels as i64, i.height as i64, i.width as i64],
        (Kind::Float, subnet.device()),
    );
    for _ in 0..warmup {
        let _ = subnet.predict(&x)?;
    }
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let _ = subnet.predict(&x)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `count` distinct canonical genotypes: the smallest, the largest, then seeded samples.
fn candidates(space: &MbConvSpace, count: usize, seed: u64) -> Result<Vec<Genotype>> {
    let mut rng = seeded_rng(seed);
    let mut out = vec![space.smallest(), space.largest()];
    out.dedup();
    // Small spaces may hold fewer distinct subnets than asked for: give up after many draws.
    let mut draws = 0;
    while out.len() < count && draws < 100 * count {
        draws += 1;
        let g = space.canonical(&space.sample(&mut rng))?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Chooses at most `size` of the front (indices into `latency`), fastest first: always the
/// fastest and the slowest (most accurate), the rest closest to log-spaced latencies in between.
fn spread(front: &[usize], latency: &[f64], size: usize) -> Vec<usize> {
    let mut sorted = front.to_vec();
    sorted.sort_by(|&a, &b| latency[a].total_cmp(&latency[b]));
    if sorted.len() <= size {
        return sorted;
    }
    let (lo, hi) = (
        latency[sorted[0]].ln(),
        latency[sorted[sorted.len() - 1]].ln(),
    );
    let mut chosen = vec![sorted[0], sorted[sorted.len() - 1]];
    for k in 1..size - 1 {
        let want = lo + (hi - lo) * k as f64 / (size - 1) as f64;
        if let Some(&best) = sorted
            .iter()
            .filter(|i| !chosen.contains(i))
            .min_by(|&&a, &&b| {
                (latency[a].ln() - want)
                    .abs()
                    .total_cmp(&(latency[b].ln() - want).abs())
            })
        {
            chosen.push(best);
        }
    }
    chosen.sort_by(|&a, &b| latency[a].total_cmp(&latency[b]));
    chosen
}

/// Pre-samples a Dynamic-OFA family from a trained `supernet`.
///
/// Accuracy is measured on `validation` (never the test split) after recalibrating batch norm
/// on `calibration` (usually the training split); latency on this host with libtorch, batch 1,
/// at every thread count of the parameters (the process-wide libtorch thread count is restored
/// afterwards).
pub fn presample(
    supernet: &Supernet,
    calibration: &Dataset,
    validation: &Dataset,
    norm: &Normalization,
    params: &CheckedPresampleParams,
) -> Result<Presampled> {
    let p = params.params();
    let space = supernet.space();
    let estimator = AccuracyEstimator::new(
        supernet,
        calibration,
        validation,
        norm.clone(),
        p.calibration_batches,
        p.batch_size,
    )?
    .with_seed(p.seed);
    let threads_before = tch::get_num_threads();
    let mut samples = Vec::new();
    let mut store = BnStore::new();
    for genotype in candidates(space, p.samples, p.seed)? {
        let accuracy = estimator.estimate_and_store(&genotype, &mut store)?;
        let net = space.decode(&genotype)?;
        // Extracted after recalibration: the standalone network carries its own statistics.
        let subnet = supernet.extract(&net)?.deployed()?;
        let mut latency_ms = BTreeMap::new();
        for &t in &p.threads {
            tch::set_num_threads(t);
            latency_ms.insert(t, time_subnet(&subnet, p.warmup, p.repeats)?);
        }
        samples.push(PresampledSubnet {
            description: space.describe(&genotype)?,
            genotype,
            accuracy,
            macs: net.macs(),
            latency_ms,
        });
    }
    tch::set_num_threads(threads_before);

    let serve = |s: &PresampledSubnet| s.latency_ms.get(&p.serve_threads).copied();
    let latency: Vec<f64> = samples
        .iter()
        .map(|s| serve(s).unwrap_or(f64::INFINITY))
        .collect();
    let objectives: Vec<Vec<f64>> = samples
        .iter()
        .zip(&latency)
        .map(|(s, &l)| vec![-s.accuracy, l])
        .collect();
    let front = dynas_search::pareto::non_dominated(&objectives);
    let family = spread(&front, &latency, p.family_size);

    let mut family_store = BnStore::new();
    let mut points = Vec::with_capacity(family.len());
    for &i in &family {
        let s = &samples[i];
        // Written back into the supernet and captured again: a store of the family only.
        store.activate(supernet, &s.genotype)?;
        family_store.capture(supernet, &s.genotype)?;
        points.push(DeploymentPoint {
            genotype: s.genotype.clone(),
            exits: Vec::new(),
            point: OperatingPoint::default(),
            metrics: DeployedMetrics {
                top1: 100.0 * s.accuracy,
                latency_ms: latency[i],
                energy_mj: None,
                accuracy_source: Provenance::measured(format!(
                    "validation split, {} images, batch norm recalibrated on {} batches of {}",
                    validation.len(),
                    p.calibration_batches,
                    p.batch_size
                )),
                cost_source: Provenance::measured(format!(
                    "this host's CPU, libtorch, deployed form (batch norm folded, \
                     channels-last), batch 1, {} thread(s), median of {} runs",
                    p.serve_threads, p.repeats
                )),
            },
        });
    }
    let deployment = Deployment::new("dynamic-ofa", space, None, points)
        .map_err(dynas_search::SearchError::from)?;
    Ok(Presampled {
        samples,
        front_size: front.len(),
        family,
        deployment,
        bn: family_store,
    })
}

/// Latency of each deployment point priced by `model` (e.g. a published lookup table) for the
/// networks `space` decodes the genotypes to, at the default operating point.
pub fn price_deployment(
    deployment: &Deployment,
    space: &MbConvSpace,
    model: &dyn CostModel,
) -> Result<Vec<f64>> {
    deployment
        .points
        .iter()
        .map(|p| {
            let net = space.decode(&p.genotype)?;
            model
                .estimate(&net, &OperatingPoint::default())
                .map(|c| c.latency_ms)
                .map_err(|e| SupernetError::invalid("model", e.to_string()))
        })
        .collect()
}

/// Lifts a genotype of a one-stage space (such as `ofa-mnist`, whose elastic choices are
/// those of a once-for-all MobileNetV3 stage) into a multi-stage `target` space (such as
/// `ofa_mobilenet_v3_width(1.2)`, the network of Dynamic-OFA's Jetson lookup tables): every
/// `stageK.*` gene of the target takes the choice of `stage1.*` in the source, the input
/// resolution is `resolution`, and genes the source lacks take their first choice.
///
/// The lifted network is the ImageNet-scale analogue of the subnet (same depth, kernel and
/// expansion choices in every stage), not the same network: prices of lifted genotypes compare
/// family members on that board, they are not latencies of the Fashion-MNIST networks.
pub fn lift_genotype(
    source: &MbConvSpace,
    genotype: &Genotype,
    target: &MbConvSpace,
    resolution: usize,
) -> Result<Genotype> {
    let source_dims = source.dimensions();
    if source_dims.len() != genotype.len() {
        return Err(SupernetError::invalid(
            "genotype",
            format!(
                "{genotype} has {} genes, space `{}` {}",
                genotype.len(),
                source.name(),
                source_dims.len()
            ),
        ));
    }
    let source_roles = source.gene_roles();
    let gene_of = |role: MbConvGene| -> Option<usize> {
        source_roles
            .iter()
            .position(|&r| r == role)
            .and_then(|i| genotype.get(i))
    };
    let genes = target
        .gene_roles()
        .into_iter()
        .zip(target.dimensions())
        .map(|(role, d)| {
            if role == MbConvGene::Resolution {
                let want = resolution.to_string();
                return d.labels().iter().position(|l| *l == want).ok_or_else(|| {
                    SupernetError::invalid(
                        "resolution",
                        format!("{resolution} is not a resolution of `{}`", target.name()),
                    )
                });
            }
            let from_first_stage = role.stage().and_then(|_| gene_of(role.in_stage(0)));
            Ok(from_first_stage.or_else(|| gene_of(role)).unwrap_or(0))
        })
        .collect::<Result<Vec<_>>>()?;
    let lifted = Genotype::new(genes);
    target.validate(&lifted)?;
    Ok(lifted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_the_extremes_and_log_spaced_members() {
        // The middle pick wants sqrt(1 x 8) = 2.83 ms: member 3 (3 ms) is nearest on a log scale.
        let latency = [1.0, 1.1, 2.0, 3.0, 7.0, 8.0];
        let front = [5, 0, 1, 2, 3, 4];
        assert_eq!(spread(&front, &latency, 3), vec![0, 3, 5]);
        assert_eq!(spread(&front, &latency, 10), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(spread(&front, &latency, 2), vec![0, 5]);
    }

    #[test]
    fn lifted_genotypes_copy_the_stage_choices_into_every_stage() {
        let mnist = MbConvSpace::ofa_mnist();
        let ofa = MbConvSpace::ofa_mobilenet_v3_width(1.2).expect("space");
        let largest = lift_genotype(&mnist, &mnist.largest(), &ofa, 224).expect("lift");
        let subnet = ofa.subnet(&largest).expect("decodes");
        assert_eq!(subnet.resolution, 224);
        // The largest choice in every stage at the largest resolution: the largest network.
        assert_eq!(largest, ofa.largest());
        let net = ofa.decode(&largest).expect("decodes");
        let smallest = lift_genotype(&mnist, &mnist.smallest(), &ofa, 160).expect("lift");
        assert!(ofa.decode(&smallest).expect("decodes").macs() < net.macs());
        assert!(lift_genotype(&mnist, &mnist.largest(), &ofa, 150).is_err());
        assert!(lift_genotype(&mnist, &Genotype::new(vec![0]), &ofa, 224).is_err());
    }

    #[test]
    fn params_are_checked() {
        assert!(PresampleParams::default().check().is_ok());
        let bad = |f: fn(&mut PresampleParams)| {
            let mut p = PresampleParams::default();
            f(&mut p);
            p.check().is_err()
        };
        assert!(bad(|p| p.family_size = 1));
        assert!(bad(|p| p.samples = 3));
        assert!(bad(|p| p.threads = vec![]));
        assert!(bad(|p| p.serve_threads = 4));
        assert!(bad(|p| p.repeats = 0));
        assert!(bad(|p| p.calibration_batches = 0));
        assert!(bad(|p| p.batch_size = 0));
    }
}
