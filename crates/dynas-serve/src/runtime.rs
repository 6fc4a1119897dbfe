//! The Dynamic-OFA runtime on this host: a pre-sampled family ([`mod@crate::presample`]) resident
//! in memory (every member extracted with its stored batch-norm statistics, so a switch is a
//! pointer change and never a recalibration) classifies a stream of test images one at a time,
//! and a `dynas-dvfs` policy chooses the member every window from the measured latencies (and,
//! in predictive mode, a `/proc/stat` load reading), optionally under a [`CoRunner`] loading
//! the cores following a load trace.

use std::time::Instant;

use dynas_core::{DeployedExit, Deployment};
use dynas_dvfs::{
    CoRunner, CoRunnerParams, CoRunnerReport, ConfigurationSet, DelayProfile, HostLoadProbe,
    LoadTrace, Observation,
};
use dynas_exits::{Backbone as _, DynamicNet, ExitHeads, ExitPolicy, ExitRule};
use dynas_space::{Genotype, SearchSpace, seeded_rng};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use dynas_supernet::ExitPlan;
use dynas_supernet::data::{Augmentation, Dataset, Normalization};
use dynas_supernet::oracle::BnStore;
use dynas_supernet::supernet::{DeployedSubnet, Supernet};
use dynas_supernet::{Result, SupernetError};

mod params;
pub use params::{ServeParams, ServePolicy};

/// One resident member of the family.
#[derive(Debug)]
pub struct Member {
    /// The subnet's genotype.
    pub genotype: Genotype,
    /// The extracted network with its stored batch-norm statistics, in the deployed form
    /// that serves ([`Subnet::deployed`](dynas_supernet::Subnet::deployed)); only this form stays
    /// resident.
    pub deployed: DeployedSubnet,
    /// Its deployment top-1 (validation), %.
    pub top1: f64,
    /// Its deployment latency on an idle host, ms.
    pub idle_latency_ms: f64,
    /// Its early exits as deployed (empty: the subnet runs to its classifier).
    pub deployed_exits: Vec<DeployedExit>,
    /// The exit heads that run them, where the point has exits.
    pub exits: Option<MemberExits>,
}

/// The early exits of a resident member: the heads the search trained, and a max-softmax
/// policy with the deployed thresholds (heads the point does not deploy get `+inf`: they never
/// fire and are not run).
#[derive(Debug)]
pub struct MemberExits {
    heads: ExitHeads,
    policy: ExitPolicy,
    /// For each head, the index of its deployed exit (`None`: not deployed).
    slots: Vec<Option<usize>>,
    /// The batch-1 serving path: only the deployed heads, folded.
    plan: ExitPlan,
}

impl MemberExits {
    /// Heads read from the bundle in `dir` for `genotype`, run by `deployed` exits of `subnet`.
    fn load(
        dir: &std::path::Path,
        genotype: &Genotype,
        subnet: &DeployedSubnet,
        deployed: &[DeployedExit],
    ) -> Result<Self> {
        let layout = dynas_supernet::bundle::HeadLayout::read(dir, genotype)?;
        let path = dynas_supernet::bundle::exit_heads_path(dir, genotype);
        let exits_err = |e: dynas_exits::ExitError| {
            SupernetError::invalid("exit heads", format!("`{}`: {e}", path.display()))
        };
        let mut heads = ExitHeads::new(subnet, layout.blocks.clone(), layout.head, subnet.device())
            .map_err(exits_err)?;
        heads.load(&path, None).map_err(exits_err)?;
        let mut thresholds = vec![f64::INFINITY; layout.blocks.len()];
        let mut slots = vec![None; layout.blocks.len()];
        for (k, d) in deployed.iter().enumerate() {
            let h = layout
                .blocks
                .iter()
                .position(|&b| b == d.after_layer.index())
                .ok_or_else(|| {
                    SupernetError::invalid(
                        "deployed exit",
                        format!(
                            "{genotype} has no exit head after layer {} in `{}`",
                            d.after_layer,
                            path.display()
                        ),
                    )
                })?;
            thresholds[h] = d.threshold;
            slots[h] = Some(k);
        }
        let plan = ExitPlan::new(&heads, &thresholds, subnet.num_blocks())?;
        let policy = ExitPolicy::new(ExitRule::MaxSoftmax(thresholds), layout.blocks.len())
            .map_err(exits_err)?;
        Ok(Self {
            heads,
            policy,
            slots,
            plan,
        })
    }
}

impl Member {
    /// Classifies one batch of one image: the predicted class and where it left, as the index
    /// of its deployed exit (`deployed_exits.len()`: the final classifier). The backbone runs
    /// block by block in deployed form, and after a block with a deployed exit its folded head
    /// decides: the input leaves when its max-softmax confidence reaches the threshold (the
    /// rule [`DynamicNet`] applies, see [`Member::classify_reference`]).
    pub fn classify(&self, x: &Tensor) -> Result<(i64, usize)> {
        let last = self.deployed_exits.len();
        let Some(e) = &self.exits else {
            return Ok((
                self.deployed
                    .predict(x)?
                    .argmax(-1, false)
                    .int64_value(&[0]),
                last,
            ));
        };
        let (class, head) = e.plan.classify(&self.deployed, x)?;
        let slot = head.and_then(|h| e.slots.get(h).copied().flatten());
        Ok((class, slot.unwrap_or(last)))
    }

    /// [`Member::classify`] through [`DynamicNet`] (heads unfolded, any batch size): the
    /// reference the serving path is checked against.
    pub fn classify_reference(&self, x: &Tensor) -> Result<(i64, usize)> {
        let last = self.deployed_exits.len();
        match &self.exits {
            None => Ok((
                self.deployed
                    .predict(x)?
                    .argmax(-1, false)
                    .int64_value(&[0]),
                last,
            )),
            Some(e) => {
                let net = DynamicNet::new(&self.deployed, &e.heads, e.policy.clone())
                    .map_err(|err| SupernetError::invalid("exits", err.to_string()))?;
                let out = net
                    .infer(x)
                    .map_err(|err| SupernetError::invalid("exits", err.to_string()))?;
                let head = out.exits[0];
                let slot = e.slots.get(head).copied().flatten().unwrap_or(last);
                Ok((out.predictions[0], slot))
            }
        }
    }

    /// Backbone blocks this member can stop after (for reports).
    pub fn num_blocks(&self) -> usize {
        self.deployed.num_blocks()
    }
}

/// Every member of a deployment, extracted, deployed and resident.
#[derive(Debug)]
pub struct Family {
    members: Vec<Member>,
    set: ConfigurationSet,
}

impl Family {
    /// Extracts every point of `deployment` from `supernet` with the batch-norm statistics
    /// stored for it in `bn`. A member without stored statistics is an error: the runtime never
    /// recalibrates. A point with early exits needs its heads: use [`Family::from_bundle`].
    pub fn from_deployment(
        supernet: &Supernet,
        bn: &BnStore,
        deployment: &Deployment,
    ) -> Result<Self> {
        Self::build(supernet, bn, deployment, None)
    }

    fn build(
        supernet: &Supernet,
        bn: &BnStore,
        deployment: &Deployment,
        heads: Option<&std::path::Path>,
    ) -> Result<Self> {
        if deployment.space != supernet.space().name() {
            return Err(SupernetError::Incompatible(format!(
                "the deployment is for space `{}`, the supernet is `{}`",
                deployment.space,
                supernet.space().name()
            )));
        }
        let mut members = Vec::with_capacity(deployment.points.len());
        for (i, p) in deployment.points.iter().enumerate() {
            supernet.space().validate(&p.genotype).map_err(|e| {
                SupernetError::Incompatible(format!(
                    "point {i} ({}) is out of the range of space `{}`: {e}",
                    p.genotype, deployment.space
                ))
            })?;
            if !bn.activate(supernet, &p.genotype)? {
                return Err(SupernetError::Incompatible(format!(
                    "point {i} ({}) has no stored batch-norm statistics: pre-sample again \
                     (the runtime never recalibrates)",
                    p.genotype
                )));
            }
            let deployed = supernet.extract_genotype(&p.genotype)?.deployed()?;
            let exits = match (heads, p.exits.is_empty()) {
                (_, true) => None,
                (Some(dir), false) => {
                    Some(MemberExits::load(dir, &p.genotype, &deployed, &p.exits)?)
                }
                (None, false) => {
                    return Err(SupernetError::Incompatible(format!(
                        "point {i} ({}) has early exits: read the deployment with its exit \
                         heads (Family::from_bundle)",
                        p.genotype
                    )));
                }
            };
            members.push(Member {
                genotype: p.genotype.clone(),
                deployed,
                top1: p.metrics.top1,
                idle_latency_ms: p.metrics.latency_ms,
                deployed_exits: p.exits.clone(),
                exits,
            });
        }
        let set = ConfigurationSet::from_deployment(deployment)
            .map_err(|e| SupernetError::invalid("deployment", e.to_string()))?;
        Ok(Self { members, set })
    }

    /// Every point of the deployment in the bundle folder `dir` ([`dynas_supernet::bundle`]): its
    /// subnet with the stored batch-norm statistics and, for a point with exits, the exit heads
    /// the search trained, so that each input leaves at the first deployed exit whose threshold
    /// accepts it. Serves a HADAS deployment, a Dynamic-OFA family or a single static network
    /// alike.
    pub fn from_bundle(supernet: &Supernet, dir: &std::path::Path) -> Result<(Self, Deployment)> {
        let deployment = Deployment::from_json_file(dynas_supernet::bundle::deployment_path(dir))
            .map_err(dynas_search::SearchError::from)?;
        let bn = BnStore::load(dynas_supernet::bundle::bn_store_path(dir), supernet)?;
        let family = Self::build(supernet, &bn, &deployment, Some(dir))?;
        Ok((family, deployment))
    }

    /// The same family with every member's idle latency replaced by `latencies_ms` (e.g. the
    /// host medians of [`crate::check_points`]), for serving on this host a deployment whose
    /// latencies were modelled for another device (HADAS prices a Jetson board). Energies stay
    /// as deployed (modelled); the runtime manager then plans with host latencies.
    pub fn with_idle_latencies(
        mut self,
        deployment: &Deployment,
        latencies_ms: &[f64],
    ) -> Result<Self> {
        if latencies_ms.len() != self.members.len() {
            return Err(SupernetError::invalid(
                "latencies",
                format!(
                    "{} latencies for {} members",
                    latencies_ms.len(),
                    self.members.len()
                ),
            ));
        }
        let mut priced = deployment.clone();
        for ((m, p), &ms) in self
            .members
            .iter_mut()
            .zip(&mut priced.points)
            .zip(latencies_ms)
        {
            if !(ms.is_finite() && ms > 0.0) {
                return Err(SupernetError::invalid(
                    "latencies",
                    format!("{ms} ms for {} is not finite and positive", m.genotype),
                ));
            }
            m.idle_latency_ms = ms;
            p.metrics.latency_ms = ms;
        }
        self.set = ConfigurationSet::from_deployment(&priced)
            .map_err(|e| SupernetError::invalid("deployment", e.to_string()))?;
        Ok(self)
    }

    /// The members, in deployment order (member `i` is configuration `#i`).
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The runtime manager's view of the family.
    pub fn configuration_set(&self) -> &ConfigurationSet {
        &self.set
    }

    /// The fastest member's idle latency, ms.
    pub fn fastest_idle_ms(&self) -> f64 {
        self.members
            .iter()
            .map(|m| m.idle_latency_ms)
            .fold(f64::INFINITY, f64::min)
    }
}

/// One decision window of a serve run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServeWindow {
    /// Window start since the run's start, s.
    pub time_s: f64,
    /// Member index that ran.
    pub member: usize,
    /// Inferences in the window.
    pub inferences: usize,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// Inferences slower than the target.
    pub misses: usize,
    /// Load reading at the window's end (other processes' share of the host).
    pub load_reading: f64,
    /// The co-runner's planned load at the window's start, if one ran.
    pub planned_load: Option<f64>,
}

/// What a serve run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServeReport {
    /// Policy name.
    pub policy: String,
    /// Co-runner trace name (`none` without one).
    pub trace: String,
    /// Latency target, ms.
    pub target_ms: f64,
    /// libtorch threads.
    pub threads: i32,
    /// Images classified.
    pub inferences: usize,
    /// Of which slower than the target.
    pub deadline_misses: usize,
    /// `deadline_misses / inferences`.
    pub miss_rate: f64,
    /// Measured top-1 on the streamed test images, %.
    pub top1: f64,
    /// Mean of the members' validation top-1 over inferences, %.
    pub expected_top1: f64,
    /// Member changes.
    pub switches: usize,
    /// Mean and max time of a policy decision, µs.
    pub decision_us_mean: f64,
    /// See `decision_us_mean`.
    pub decision_us_max: f64,
    /// Mean extra latency of the first inference after a switch over the rest of its window,
    /// ms (cold caches of the new member), where a switch happened.
    pub switch_excess_ms: Option<f64>,
    /// Inferences per member.
    pub member_inferences: Vec<usize>,
    /// What the co-runner did, if one ran.
    pub co_runner: Option<CoRunnerReport>,
    /// Per-window records.
    pub timeline: Vec<ServeWindow>,
    /// Each inference's latency beyond its member's idle latency, by the co-runner's planned
    /// load (empty without a co-runner): what the simulator can replay
    /// ([`dynas_dvfs::Contention::MeasuredDelays`]). Not written to reports.
    #[serde(skip)]
    pub delays: DelayProfile,
}

/// Serves `stream`'s images (the first `params.images`, cycled) with `family` under `policy`
/// for `params.duration_s` seconds (or the co-runner trace's length), with a [`CoRunner`]
/// following `load` when given.
pub fn serve(
    family: &Family,
    stream: &Dataset,
    norm: &Normalization,
    policy: ServePolicy,
    params: &ServeParams,
    load: Option<(&LoadTrace, &CoRunnerParams)>,
) -> Result<ServeReport> {
    let constraints = params.check(family)?;
    if stream.is_empty() {
        return Err(SupernetError::invalid(
            "stream",
            "the image set to serve has no images",
        ));
    }
    // A run shorter than one window at the target would serve nothing and report nothing.
    let planned_s = load.map_or(params.duration_s, |(trace, p)| {
        dynas_dvfs::LoadPlan::new(trace, p.time_scale)
            .duration_s()
            .min(params.duration_s)
    });
    let one_window_s = params.window as f64 * params.target_ms / 1e3;
    if planned_s.is_nan() || planned_s < one_window_s {
        return Err(SupernetError::invalid(
            "time_scale",
            format!(
                "the run would last {planned_s:.3e} s (the trace's length times its time scale, \
                 at most duration_s), shorter than one window of {} inferences at the {} ms \
                 target ({one_window_s:.3e} s): nothing would be served",
                params.window, params.target_ms
            ),
        ));
    }
    let set = family.configuration_set();
    let mut governor = policy.governor(set, &constraints, params.manager)?;
    let device = family
        .members
        .first()
        .map(|m| m.deployed.device())
        .unwrap_or(tch::Device::Cpu);
    let n_images = params.images.min(stream.len()).max(1);
    let mut rng = seeded_rng(0);
    let images: Vec<(Tensor, i64)> = (0..n_images)
        .map(|i| {
            let b = stream.batch(&[i], norm, &Augmentation::NONE, &mut rng, device);
            (b.images, i64::from(stream.labels()[i]))
        })
        .collect();
    let dvfs = |e: dynas_dvfs::DvfsError| SupernetError::invalid("co-runner", e.to_string());
    let mut probe = HostLoadProbe::new().map_err(dvfs)?;
    let threads_before = tch::get_num_threads();
    tch::set_num_threads(params.threads);
    // Warm every member once so the first window does not pay first-call costs.
    for m in &family.members {
        let _ = m.classify(&images[0].0)?;
    }
    let runner = match load {
        Some((trace, p)) => Some(CoRunner::start(trace, p).map_err(dvfs)?),
        None => None,
    };
    let duration = runner.as_ref().map_or(params.duration_s, |r| {
        r.plan().duration_s().min(params.duration_s)
    });
    let start = Instant::now();
    let probe_every = params.probe_interval_ms / 1e3;
    let predictive = policy == ServePolicy::Predictive;
    let mut current = governor.initial();
    let mut report = ServeReport {
        policy: policy.name().to_string(),
        trace: load.map_or_else(|| "none".to_string(), |(t, _)| t.name().to_string()),
        target_ms: params.target_ms,
        threads: params.threads,
        inferences: 0,
        deadline_misses: 0,
        miss_rate: 0.0,
        top1: 0.0,
        expected_top1: 0.0,
        switches: 0,
        decision_us_mean: 0.0,
        decision_us_max: 0.0,
        switch_excess_ms: None,
        member_inferences: vec![0; family.members.len()],
        co_runner: None,
        timeline: Vec::new(),
        delays: DelayProfile::default(),
    };
    let (mut correct, mut expected, mut decision_sum) = (0usize, 0.0, 0.0);
    let (mut excess_sum, mut excess_n) = (0.0, 0usize);
    let mut just_switched = false;
    let mut latencies = Vec::with_capacity(params.window);
    let mut next_image = 0usize;
    let mut load_at_decision = probe.sample().map_err(dvfs)?;
    let mut last_probe = 0.0;
    while start.elapsed().as_secs_f64() < duration {
        let window_start = start.elapsed().as_secs_f64();
        let planned = runner.as_ref().map(CoRunner::planned_load_now);
        let member = family.members.get(current.0).ok_or_else(|| {
            SupernetError::invalid("policy", format!("chose unknown member {}", current.0))
        })?;
        latencies.clear();
        let mut misses = 0;
        let mut reading = probe.last();
        for _ in 0..params.window {
            let (x, label) = &images[next_image];
            next_image = (next_image + 1) % images.len();
            let t = Instant::now();
            let (predicted, _exit) = member.classify(x)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            latencies.push(ms);
            if let Some(load) = planned {
                report.delays.push(load, ms - member.idle_latency_ms);
            }
            correct += usize::from(predicted == *label);
            misses += usize::from(ms > params.target_ms);
            let now = start.elapsed().as_secs_f64();
            if now - last_probe >= probe_every {
                reading = probe.sample().map_err(dvfs)?;
                last_probe = now;
                if predictive && (reading - load_at_decision).abs() > params.load_jump {
                    break;
                }
            }
            if now >= duration {
                break;
            }
        }
        if just_switched && latencies.len() >= 2 {
            let rest = latencies[1..].iter().sum::<f64>() / (latencies.len() - 1) as f64;
            excess_sum += latencies[0] - rest;
            excess_n += 1;
        }
        let k = latencies.len();
        report.inferences += k;
        report.deadline_misses += misses;
        report.member_inferences[current.0] += k;
        expected += k as f64 * member.top1;
        report.timeline.push(ServeWindow {
            time_s: window_start,
            member: current.0,
            inferences: k,
            mean_latency_ms: latencies.iter().sum::<f64>() / k.max(1) as f64,
            misses,
            load_reading: reading,
            planned_load: planned,
        });
        let observation = Observation {
            current,
            latencies_ms: &latencies,
            utilisation: reading,
            co_runner_load: Some(reading),
            energy_mj: None,
        };
        let t = Instant::now();
        let decision = governor.decide(&observation, &constraints);
        let us = t.elapsed().as_secs_f64() * 1e6;
        decision_sum += us;
        report.decision_us_max = report.decision_us_max.max(us);
        load_at_decision = reading;
        just_switched = decision.config != current;
        if just_switched {
            report.switches += 1;
        }
        current = decision.config;
    }
    tch::set_num_threads(threads_before);
    report.co_runner = runner.map(CoRunner::stop);
    let n = report.inferences.max(1) as f64;
    report.miss_rate = report.deadline_misses as f64 / n;
    report.top1 = 100.0 * correct as f64 / n;
    report.expected_top1 = expected / n;
    report.decision_us_mean = decision_sum / report.timeline.len().max(1) as f64;
    report.switch_excess_ms = (excess_n > 0).then(|| excess_sum / excess_n as f64);
    Ok(report)
}
