//! Dynamic-OFA: pre-sample a Pareto family of subnets from a once-for-all supernet (accuracy on
//! validation images, latency timed on this host), then serve images with it while a co-runner
//! loads the CPU, the runtime manager switching members to meet a latency target.
//!
//! To run in seconds the supernet (the `ofa-mnist` space) has **random weights** and the images
//! are synthetic (class-dependent brightness, 28x28), so the accuracies are near chance: the
//! program shows the workflow, not a result (the members' latencies are close too, so the
//! policies differ little). Train a supernet first for real figures (`dynas
//! train`, or `examples/experiments/supernet_fashion_mnist.rs` and `dynamic_ofa.rs`).
//! Needs libtorch (see the README).
//!
//! ```text
//! source scripts/env.sh
//! cargo run -p dynas --features tch --example dynamic_ofa_family
//! ```

use dynas::dvfs::{CoRunnerParams, LoadTrace};
use dynas::serve::{Family, PresampleParams, ServeParams, ServePolicy, presample, serve};
use dynas::space::MbConvSpace;
use dynas::supernet::tch::Device;
use dynas::supernet::{Dataset, Supernet, SupernetConfig};

/// `n` synthetic 28x28 grey images of 10 classes: brightness by class, plus hashed noise.
fn images(n: usize, seed: u64) -> Result<Dataset, Box<dyn std::error::Error>> {
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let noise = |i: u64| ((i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as u8; // 0..64
    let pixels = (0..n * 28 * 28)
        .map(|i| labels[i / (28 * 28)] * 19 + noise(i as u64))
        .collect();
    Ok(Dataset::from_parts(pixels, labels, (1, 28, 28), 10)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    dynas::supernet::tch::manual_seed(0);
    let supernet = Supernet::new(
        MbConvSpace::ofa_mnist(),
        SupernetConfig::default(),
        Device::Cpu,
    )?;
    let (calibration, validation, test) = (images(256, 1)?, images(200, 2)?, images(200, 3)?);
    let norm = calibration.channel_stats();

    // 1. Pre-sample: score subnets (batch norm recalibrated per subnet), keep a Pareto family.
    let params = PresampleParams {
        samples: 16,
        family_size: 4,
        threads: vec![1],
        serve_threads: 1,
        warmup: 2,
        repeats: 5,
        calibration_batches: 2,
        batch_size: 64,
        seed: 0,
    };
    let out = presample(
        &supernet,
        &calibration,
        &validation,
        &norm,
        &params.check()?,
    )?;
    println!(
        "{} subnets scored; family of {}:",
        out.samples.len(),
        out.family.len()
    );
    for p in &out.deployment.points {
        println!(
            "  {:5.1} %  {:.3} ms  {}",
            p.metrics.top1, p.metrics.latency_ms, p.genotype
        );
    }

    // 2. Serve: the family (deployed form, stored batch norm), a co-runner following the
    //    shipped `step` load trace, time compressed 20x.
    let family = Family::from_deployment(&supernet, &out.bn, &out.deployment)?;
    let trace = LoadTrace::shipped("step")?;
    let co_runner = CoRunnerParams {
        threads: 1,
        period_ms: 5.0,
        time_scale: 0.05,
        max_duration_s: 2.0,
    };
    let serving = ServeParams {
        target_ms: 2.0 * family.fastest_idle_ms(),
        duration_s: 2.0,
        images: test.len(),
        ..ServeParams::default()
    };
    for policy in ServePolicy::ALL {
        let r = serve(
            &family,
            &test,
            &norm,
            policy,
            &serving,
            Some((&trace, &co_runner)),
        )?;
        println!(
            "{:<15} target {:.3} ms: {} inferences, {:4.1} % missed, {} switches, per member {:?}",
            r.policy,
            r.target_ms,
            r.inferences,
            100.0 * r.miss_rate,
            r.switches,
            r.member_inferences
        );
    }
    Ok(())
}
