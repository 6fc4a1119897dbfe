//! The surrogate search's own time per batch (fitting the models, proposing and scoring
//! candidates, picking the batch) on a large space: AttentiveNAS (28 genes) x 8 operating points
//! of the Jetson AGX Xavier (29 genes in all), minimising error, latency and energy with a
//! latency limit. Accuracy is a cheap closed form of the network's MACs and of a few genes, and
//! costs come from the testkit's fake DVFS model, so evaluations take microseconds and the time
//! between two generations is the strategy's overhead.
//!
//! ```text
//! cargo run --release -p dynas-search --example bench_surrogate_overhead -- [BUDGET] [SEED]
//! ```
//! Prints each batch's time, the mean / median / max over batches (the initial design
//! excluded) and a digest of the archive (the same digest: the same search).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use dynas_cost::DeviceProfile;
use dynas_search::{
    AccuracyFn, Budget, Constraint, Control, Event, Executor, JointHardwareProblem, Metric,
    Problem, Surrogate, SurrogateParams,
};
use dynas_space::{Genotype, MbConvSpace, Network};
use dynas_testkit::ToyDvfsModel;

type Bench = JointHardwareProblem<
    MbConvSpace,
    AccuracyFn<fn(&Genotype, &Network) -> dynas_search::Result<f64>>,
    ToyDvfsModel,
>;

/// Saturating in MACs, with a mild interaction between two stages.
fn accuracy(genotype: &Genotype, network: &Network) -> dynas_search::Result<f64> {
    let macs = network.macs() as f64 / 1e6;
    let genes = genotype.genes();
    let wiggle = ((genes[0] * 3 + genes[genes.len() / 2] * 5) % 7) as f64 * 0.15;
    Ok(55.0 + 25.0 * (1.0 - (-macs / 400.0).exp()) + wiggle)
}

fn problem(latency_limit: Option<f64>) -> dynas_search::Result<Bench> {
    let device = DeviceProfile::jetson_agx_xavier();
    let all = device.operating_points();
    let step = (all.len() / 8).max(1);
    let points: Vec<_> = all.into_iter().step_by(step).take(8).collect();
    let accuracy: fn(&Genotype, &Network) -> dynas_search::Result<f64> = accuracy;
    let problem = JointHardwareProblem::new(
        MbConvSpace::attentive_nas(),
        AccuracyFn::new("macs-proxy", accuracy),
        ToyDvfsModel::default(),
        points,
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )?;
    match latency_limit {
        Some(limit) => problem.with_constraint(Constraint {
            metric: Metric::LatencyMs,
            limit,
        }),
        None => Ok(problem),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let budget: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    // The latency limit is the median latency of 200 random genotypes: about half the space
    // is infeasible.
    let probe = problem(None)?;
    let mut rng = dynas_space::seeded_rng(0);
    let mut latencies: Vec<f64> = (0..200)
        .map(|_| {
            let g = probe.space().sample(&mut rng);
            probe.evaluate(&g).map(|e| e.values[1])
        })
        .collect::<dynas_search::Result<_>>()?;
    latencies.sort_by(f64::total_cmp);
    let limit = latencies[latencies.len() / 2];
    let problem = problem(Some(limit))?;
    let times: Arc<Mutex<Vec<f64>>> = Arc::default();
    let sink = Arc::clone(&times);
    let mut last = Instant::now();
    let observer = move |event: &Event<'_>| {
        if let Event::Generation { .. } = event {
            let now = Instant::now();
            sink.lock().unwrap().push((now - last).as_secs_f64() * 1e3);
            last = now;
        }
        Control::Continue
    };
    let params = SurrogateParams::default();
    let started = Instant::now();
    let result = Executor::new(
        &problem,
        Surrogate::new(params.check()?),
        Budget::evaluations(budget)?,
    )
    .seed(seed)
    .observe(observer)
    .run()?;
    let total = started.elapsed().as_secs_f64();
    let times = times.lock().unwrap().clone();
    let mut batches: Vec<f64> = times.iter().skip(1).copied().collect();
    for (i, ms) in batches.iter().enumerate() {
        println!("batch {:>3}: {ms:>8.1} ms", i + 1);
    }
    batches.sort_by(f64::total_cmp);
    let mean = batches.iter().sum::<f64>() / batches.len().max(1) as f64;
    let median = batches.get(batches.len() / 2).copied().unwrap_or(0.0);
    let max = batches.last().copied().unwrap_or(0.0);
    let feasible = result
        .archive
        .records()
        .iter()
        .filter(|r| r.evaluation.is_feasible())
        .count();
    // A digest of the archive in evaluation order: two builds that search alike print the same.
    let digest = result
        .archive
        .records()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, r| {
            r.genotype
                .to_string()
                .bytes()
                .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        });
    println!("archive digest {digest:016x}");
    println!(
        "latency limit {limit:.1} ms; {} evaluations ({feasible} feasible), {} batches, front {}: per batch mean {mean:.1} ms, \
         median {median:.1} ms, max {max:.1} ms; whole search {total:.2} s",
        result.archive.len(),
        batches.len(),
        result.front.len()
    );
    Ok(())
}
