//! The runtime: a `Deployment` (what a search hands over) becomes a `ConfigurationSet`, and the
//! `RuntimeManager` picks a configuration (subnet x operating point) each window of a load
//! trace, replayed by the simulator.
//!
//! The deployment is built here from three AttentiveNAS subnets (stand-in accuracies) priced
//! by the analytical Jetson AGX Xavier model at five GPU clocks; a search (see the `hadas`
//! example) writes the same file. On the shipped `step` trace a co-runner slows inference
//! down; the manager meets a 6 ms target at the least energy above a 78 % accuracy floor, and
//! is compared with the most accurate subnet that meets the target at the highest clocks.
//!
//! ```text
//! cargo run -p dynas --example runtime
//! ```

use dynas::cost::{AnalyticalModel, AnalyticalParams};
use dynas::dvfs::Governor as _;
use dynas::dvfs::Simulator;
use dynas::dvfs::{Constraints, LoadTrace, ManagerParams, Policy, SimParams, build_policy};
use dynas::prelude::*;
use dynas::search::{DeployedMetrics, Deployment, DeploymentPoint, Provenance};
use dynas::space::MbConvSpace;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let space = MbConvSpace::attentive_nas();
    let xavier = DeviceProfile::jetson_agx_xavier();
    let model = AnalyticalModel::new(xavier.clone(), AnalyticalParams::default())?;
    let mid = Genotype::new(space.dimensions().iter().map(|d| d.len() / 2).collect());
    let subnets = [
        (space.smallest(), 77.3),
        (mid, 79.5),
        (space.largest(), 80.7),
    ];
    let max = xavier.max_operating_point();
    let gpu = &xavier.gpu_hz;

    // One deployment point per subnet and GPU clock (CPU and memory at their highest).
    let mut points = Vec::new();
    for (genotype, top1) in &subnets {
        let network = space.decode(genotype)?;
        for &hz in gpu.iter().skip(gpu.len() / 2).step_by(2) {
            let point = OperatingPoint::new(max.cpu_hz(), Some(hz), max.memory_hz())?;
            let cost = model.estimate(&network, &point)?;
            let metrics = DeployedMetrics {
                top1: *top1,
                latency_ms: cost.latency_ms,
                energy_mj: cost.energy_mj,
                accuracy_source: Provenance::measured("stand-in accuracies"),
                cost_source: Provenance::modelled("analytical Xavier model, default parameters"),
            };
            points.push(DeploymentPoint {
                genotype: genotype.clone(),
                exits: vec![],
                point,
                metrics,
            });
        }
    }
    let deployment = Deployment::new("example", &space, Some(xavier), points)?;
    let set = ConfigurationSet::from_deployment(&deployment)?;
    println!("{} configurations", set.len());

    // A latency target (ms), an accuracy floor (%), no energy budget.
    let constraints = Constraints::new(6.0, Some(78.0), None)?;
    let trace = LoadTrace::shipped("step")?;
    let simulator = Simulator::new(
        set.clone(),
        SimParams::for_target(&constraints).with_seed(0),
    );

    let mut manager = RuntimeManager::new(set.clone(), ManagerParams::default(), &constraints);
    let first = set.get(manager.initial())?;
    println!(
        "idle choice: {:.1} %, {:.2} ms at {}",
        first.accuracy, first.latency_ms, first.point
    );
    let managed = simulator.run(&mut manager, &trace, &constraints)?;
    let (static_set, mut fixed) = build_policy(
        Policy::StaticMax,
        &set,
        &constraints,
        ManagerParams::default(),
    )?;
    let fixed = Simulator::new(static_set, SimParams::for_target(&constraints).with_seed(0)).run(
        fixed.as_mut(),
        &trace,
        &constraints,
    )?;

    println!("policy          misses  accuracy  mJ/inference  switches");
    for r in [&managed, &fixed] {
        println!(
            "{:<14} {:6.2} %  {:6.2} %  {:12.3}  {:8}",
            r.policy,
            100.0 * r.miss_rate,
            r.mean_accuracy,
            r.energy_per_inference_mj,
            r.switches
        );
    }
    Ok(())
}
