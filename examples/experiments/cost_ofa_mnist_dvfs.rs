//! Cost of the OFA-MNIST space on a Jetson AGX Xavier at any CPU / GPU / memory clock, from
//! the measured per-layer lookup table and DVFS laws fitted on measured clock sweeps.
//!
//! ```text
//! cargo run --release -p dynas-cost --example cost_ofa_mnist_dvfs -- [DATA_DIR] [SEEDS]
//! ```
//! `DATA_DIR` defaults to `crates/dynas-data/data`. Prints:
//! 1. held-out error of latency laws on the **measured** Jetson TX2 GPU sweep (3 networks,
//!    13 clocks): 5 random clocks per network fitted, the others predicted, over `SEEDS`
//!    draws (default 100); seed 0 alone is what `dynas cost dvfs-fit --seed 0` reports;
//! 2. the rail-power laws fitted on the **measured** vgg19 rail powers, with their worst
//!    relative error on the measured points;
//! 3. the **modelled** cost of the smallest and largest OFA-MNIST subnets and of an exit head
//!    at several operating points (`DvfsLutModel`), per layer at the highest clocks with the
//!    source of each layer's figure.

use clap::Parser;
use std::path::PathBuf;

use dynas_cost::dvfs::{DvfsLawParams, DvfsScalingLaw, read_gpu_sweep, read_power_sweep};
use dynas_cost::{CostModel, CostSource, DvfsLutModel, DvfsPowerLaw, OperatingPoint};
use dynas_space::{Activation, Layer, MbConvSpace, Network, SearchSpace};
use rand::seq::SliceRandom;

/// A latency law fitted on (clock, latency) points.
type Fitter = dyn Fn(&[Vec<f64>], &[f64]) -> Result<DvfsScalingLaw, dynas_cost::CostError>;

/// Cost of the OFA-MNIST space on a Jetson AGX Xavier at any CPU / GPU / memory clock.
#[derive(Parser)]
struct Args {
    /// The shared data folder.
    #[arg(default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data"))]
    data: PathBuf,
    /// Random draws of the fitted clocks.
    #[arg(default_value_t = 100)]
    seeds: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { data, seeds } = Args::parse();

    // 1. Latency laws on the measured TX2 GPU sweep.
    let sweeps = read_gpu_sweep(data.join("dvfs/jetson_tx2_gpu_sweep.csv"))?;
    let inverse: Box<Fitter> = Box::new(|c, y| {
        // t = c1 / f: the one-parameter least-squares fit.
        let num: f64 = c.iter().zip(y).map(|(f, t)| t / f[0]).sum();
        let den: f64 = c.iter().map(|f| 1.0 / (f[0] * f[0])).sum();
        Ok(DvfsScalingLaw {
            constant: 0.0,
            per_clock: vec![num / den],
            floor: 0.0,
            sharpness: 1.0,
        })
    });
    let with = |params: DvfsLawParams| -> Result<Box<Fitter>, dynas_cost::CostError> {
        let checked = params.check()?;
        Ok(Box::new(move |c, y| {
            DvfsScalingLaw::fit_with(c, y, &checked)
        }))
    };
    let soft = |p: f64| DvfsLawParams {
        sharpness: p,
        pick_sharpness: false,
        ..DvfsLawParams::default()
    };
    let laws: Vec<(&str, Box<Fitter>)> = vec![
        ("c1/f (least squares)", inverse),
        (
            "c0 + c1/f (additive, NNLS)",
            with(DvfsLawParams::additive())?,
        ),
        ("soft roofline p = 2", with(soft(2.0))?),
        ("soft roofline p = 3", with(soft(3.0))?),
        ("soft roofline p = 4", with(soft(4.0))?),
        ("soft roofline p = 6", with(soft(6.0))?),
        ("soft roofline p = 8", with(soft(8.0))?),
        ("hard roofline (p = 64)", with(soft(64.0))?),
        (
            "soft roofline, p picked from 1/2/4/8 by training error (default)",
            with(DvfsLawParams::default())?,
        ),
    ];
    let train_points = 5;
    println!(
        "## Latency laws, measured TX2 GPU sweep, {train_points} fitted clocks per network, MAPE on the others"
    );
    println!("| law | seed 0 | mean over {seeds} seeds | worst seed |");
    println!("|---|---|---|---|");
    for (name, fit) in &laws {
        let mut per_seed = Vec::new();
        for seed in 0..seeds {
            let mut rng = dynas_space::seeded_rng(seed);
            let (mut sum, mut n) = (0.0, 0usize);
            for s in &sweeps {
                let mut idx: Vec<usize> = (0..s.clock_hz.len()).collect();
                idx.shuffle(&mut rng);
                let (train, test) = idx.split_at(train_points);
                let clocks: Vec<Vec<f64>> = train.iter().map(|&i| vec![s.clock_hz[i]]).collect();
                let y: Vec<f64> = train.iter().map(|&i| s.latency_ms[i]).collect();
                let law = fit(&clocks, &y)?;
                for &i in test {
                    let t = s.latency_ms[i];
                    sum += ((law.predict(&[s.clock_hz[i]]) - t) / t).abs();
                    n += 1;
                }
            }
            per_seed.push(100.0 * sum / n as f64);
        }
        let mean = per_seed.iter().sum::<f64>() / per_seed.len() as f64;
        let worst = per_seed.iter().copied().fold(0.0f64, f64::max);
        println!(
            "| {name} | {:.2} % | {mean:.2} % | {worst:.2} % |",
            per_seed[0]
        );
    }

    // 2. Rail-power laws on the measured vgg19 sweep.
    let power = read_power_sweep(data.join("dvfs/jetson_tx2_vgg19_gpu_dvfs_power.csv"))?;
    let top = power.gpu_hz.iter().copied().fold(0.0f64, f64::max);
    println!("\n## Rail power vs GPU clock, measured TX2 vgg19 sweep, fitted P = s + d x v(x)^2");
    println!("| rail | static W | dynamic W | knee x | voltage slope | worst rel. error |");
    println!("|---|---|---|---|---|---|");
    for rail in dynas_cost::dvfs::POWER_RAILS {
        let measured = power.rail(rail)?;
        let law = DvfsPowerLaw::fit(&power.gpu_hz, measured, top)?;
        let worst = power
            .gpu_hz
            .iter()
            .zip(measured)
            .map(|(&f, &p)| ((law.power_w(f) - p) / p).abs())
            .fold(0.0f64, f64::max);
        println!(
            "| {rail} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} % |",
            law.static_w,
            law.dynamic_w,
            law.knee,
            law.voltage_slope,
            100.0 * worst
        );
    }

    // 3. The OFA-MNIST space on the AGX Xavier.
    let model = DvfsLutModel::jetson_agx_xavier(&data)?;
    let r = model.regression();
    println!(
        "\n## Layer regression on the {} Xavier LUT rows (for layers without a key)",
        r.rows
    );
    println!(
        "latency = {:.4} ms + {:.4} ms/MMAC + {:.4} ms/MB; energy = {:.4} mJ + {:.4} mJ/MMAC + {:.4} mJ/MB",
        r.latency[0], r.latency[1], r.latency[2], r.energy[0], r.energy[1], r.energy[2]
    );
    let law = &model.laws().device_latency;
    println!(
        "device latency law (relative clocks): {:.4} + (({:.4}/x_gpu)^{p} + ({:.4}/x_mem)^{p})^(1/{p})",
        law.constant,
        law.per_clock[0],
        law.per_clock[1],
        p = law.sharpness
    );
    let space = MbConvSpace::ofa_mnist();
    let device = model.device().clone();
    let top = model.reference_point();
    let lowest = |list: &[u64]| list.first().copied();
    let points = [
        ("highest clocks (LUT)", top.clone()),
        (
            "GPU lowest",
            OperatingPoint::new(top.cpu_hz(), lowest(&device.gpu_hz), top.memory_hz())?,
        ),
        (
            "CPU lowest",
            OperatingPoint::new(lowest(&device.cpu_hz), top.gpu_hz(), top.memory_hz())?,
        ),
        (
            "memory lowest",
            OperatingPoint::new(top.cpu_hz(), top.gpu_hz(), lowest(&device.memory_hz))?,
        ),
        ("all lowest", device.min_operating_point()),
    ];
    for (label, genotype) in [("smallest", space.smallest()), ("largest", space.largest())] {
        let net = space.decode(&genotype)?;
        println!("\n### {label} subnet {genotype}, per layer at the highest clocks");
        println!("| layer | source | latency ms | energy mJ |");
        println!("|---|---|---|---|");
        let b = model.breakdown(&net, &top)?;
        for ((layer, cost), source) in net.layers.iter().zip(&b.layers).zip(model.sources(&net)) {
            println!(
                "| {} | {} | {:.3} | {:.3} |",
                layer.name,
                source_label(source),
                cost.latency_ms,
                cost.energy_mj.unwrap_or(0.0)
            );
        }
        println!("| operating point | latency ms | energy mJ |");
        println!("|---|---|---|");
        for (name, point) in &points {
            let c = model.estimate(&net, point)?;
            println!(
                "| {name} ({point}) | {:.3} | {:.3} |",
                c.latency_ms,
                c.energy_mj.unwrap_or(0.0)
            );
        }
        let (best, cost) = model
            .operating_points()
            .into_iter()
            .filter_map(|p| {
                let c = model.estimate(&net, &p).ok()?;
                Some((p, c))
            })
            .min_by(|a, b| {
                a.1.energy_mj
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.1.energy_mj.unwrap_or(f64::MAX))
            })
            .ok_or("no operating point")?;
        println!(
            "| lowest energy of {} points ({best}) | {:.3} | {:.3} |",
            device.num_operating_points(),
            cost.latency_ms,
            cost.energy_mj.unwrap_or(0.0)
        );
    }

    // An exit head after the first stage block (HADAS head: 3x3 conv, pool, linear).
    let net = space.decode(&space.largest())?;
    let input = net.layers[2].output();
    let conv = Layer::conv("exit.conv", input, 32, 3, 1, Activation::Relu);
    let pool = Layer::global_avg_pool("exit.pool", conv.output());
    let head = Network::new(
        input,
        vec![conv, pool, Layer::linear("exit.linear", 32, 10)],
    );
    println!(
        "\n### exit head (3x3 conv to 32 channels, pool, linear) on {}x{}x{}",
        input.channels, input.height, input.width
    );
    let b = model.breakdown(&head, &top)?;
    for ((layer, cost), source) in head.layers.iter().zip(&b.layers).zip(model.sources(&head)) {
        println!(
            "| {} | {} | {:.3} ms | {:.3} mJ |",
            layer.name,
            source_label(source),
            cost.latency_ms,
            cost.energy_mj.unwrap_or(0.0)
        );
    }
    Ok(())
}

fn source_label(source: CostSource) -> &'static str {
    match source {
        CostSource::Measured => "measured (LUT)",
        CostSource::Regression => "modelled (regression)",
        CostSource::Free => "free",
    }
}
