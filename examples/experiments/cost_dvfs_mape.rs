//! DVFS prediction error versus the number K of measured operating points.
//!
//! ```text
//! cargo run --release -p dynas-cost --example cost_dvfs_mape -- [SEED]
//! ```
//! **Synthetic data** (no per-operating-point latency is shipped): latencies of three
//! MobileNet-like networks are generated on the 126 GPU x EMC operating points of the Jetson
//! AGX Xavier by an [`AnalyticalModel`] with the roofline `max` (compute vs memory bound per
//! layer), times multiplicative noise of 3 % (log-normal). For each K, K random points are
//! "measured", three models are fitted and the other points predicted:
//! the clock-only scaling law `c0 + c1/f_gpu + c2/f_emc` ([`DvfsScalingLaw`] with
//! [`DvfsLawParams::additive`], `dynas cost dvfs-fit --law additive`), the soft roofline
//! `c0 + (floor^4 + (c1/f_gpu)^4 + (c2/f_emc)^4)^(1/4)` (the default of `dynas cost dvfs-fit`)
//! and the layer-aware [`AnalyticalModel::fit`]. Prints the mean
//! absolute percentage error against the noisy held-out measurements, over 50 draws.

use clap::Parser;
use dynas_cost::{
    AnalyticalModel, AnalyticalParams, CostModel, DeviceProfile, DvfsLawParams, DvfsScalingLaw,
    Measurement, OperatingPoint,
};
use dynas_space::{Activation, Layer, Network, TensorShape};
use rand::Rng;
use rand::seq::SliceRandom;

fn mobilenet(width: usize, res: usize) -> Network {
    let input = TensorShape::new(3, res, res);
    let mut layers = vec![Layer::conv(
        "stem",
        input,
        16 * width / 4,
        3,
        2,
        Activation::HardSwish,
    )];
    let mut shape = layers[0].output();
    for (i, &(c, s, e)) in [
        (16, 1, 1),
        (24, 2, 4),
        (24, 1, 3),
        (40, 2, 3),
        (40, 1, 3),
        (80, 2, 6),
        (80, 1, 6),
        (112, 1, 6),
        (160, 2, 6),
        (160, 1, 6),
    ]
    .iter()
    .enumerate()
    {
        let c = c * width / 4;
        let l = Layer::mbconv(
            format!("b{i}"),
            shape,
            c,
            shape.channels * e,
            3,
            s,
            None,
            Activation::HardSwish,
        );
        shape = l.output();
        layers.push(l);
    }
    layers.push(Layer::global_avg_pool("gap", shape));
    layers.push(Layer::linear("fc", shape.channels, 1000));
    Network::new(input, layers)
}

/// DVFS prediction error versus the number K of measured operating points.
#[derive(Parser)]
struct Args {
    /// Seed of the synthetic measurements and of the K-point draws.
    #[arg(default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = Args::parse().seed;
    let device = DeviceProfile::jetson_agx_xavier();
    let truth = AnalyticalParams::builder()
        .macs_per_cycle(200.0)
        .bytes_per_cycle(16.0)
        .layer_overhead_ms(0.03)
        .network_overhead_ms(0.4)
        .new()?;
    let model = AnalyticalModel::new(device.clone(), truth)?;
    let cpu = device.cpu_hz.last().copied();
    let points: Vec<OperatingPoint> = device
        .gpu_hz
        .iter()
        .flat_map(|&g| {
            device
                .memory_hz
                .iter()
                .map(move |&m| OperatingPoint::new(cpu, Some(g), Some(m)))
        })
        .collect::<Result<_, _>>()?;
    let nets = [mobilenet(4, 224), mobilenet(6, 192), mobilenet(3, 160)];
    let mut rng = dynas_space::seeded_rng(seed);
    // Log-normal noise via Box-Muller.
    let noise = |rng: &mut dynas_space::DynasRng| {
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        (0.03 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()).exp()
    };
    let measured: Vec<Vec<f64>> = nets
        .iter()
        .map(|n| {
            points
                .iter()
                .map(|p| model.estimate(n, p).map(|c| c.latency_ms * noise(&mut rng)))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let additive = DvfsLawParams::additive().check()?;
    let soft = DvfsLawParams::default().check()?;
    println!("| K | additive scaling law MAPE | soft-roofline law MAPE | analytical fit MAPE |");
    println!("|---|---|---|---|");
    for k in [3usize, 4, 5, 6, 8, 12, 16, 32, 64] {
        let (mut law_err, mut soft_err, mut ana_err, mut n) = (0.0, 0.0, 0.0, 0usize);
        for _ in 0..50 {
            for (net, lat) in nets.iter().zip(&measured) {
                let mut idx: Vec<usize> = (0..points.len()).collect();
                idx.shuffle(&mut rng);
                let (train, test) = idx.split_at(k);
                let clocks = |i: usize| {
                    vec![
                        points[i].gpu_hz().unwrap_or(1) as f64 / 1e6,
                        points[i].memory_hz().unwrap_or(1) as f64 / 1e6,
                    ]
                };
                let train_clocks: Vec<Vec<f64>> = train.iter().map(|&i| clocks(i)).collect();
                let train_lat: Vec<f64> = train.iter().map(|&i| lat[i]).collect();
                let law = DvfsScalingLaw::fit_with(&train_clocks, &train_lat, &additive)?;
                // The soft roofline has one more unknown (its floor): from K = 4.
                let soft_law = DvfsScalingLaw::fit_with(&train_clocks, &train_lat, &soft).ok();
                let ms: Vec<Measurement<'_>> = train
                    .iter()
                    .map(|&i| Measurement {
                        network: net,
                        point: points[i].clone(),
                        latency_ms: lat[i],
                        energy_mj: None,
                    })
                    .collect();
                let fitted = AnalyticalModel::fit(device.clone(), &ms, AnalyticalParams::default());
                for &i in test {
                    law_err += ((law.predict(&clocks(i)) - lat[i]) / lat[i]).abs();
                    let s = soft_law.as_ref().unwrap_or(&law).predict(&clocks(i));
                    soft_err += ((s - lat[i]) / lat[i]).abs();
                    let p = match &fitted {
                        Ok(m) => m.estimate(net, &points[i])?.latency_ms,
                        Err(_) => law.predict(&clocks(i)),
                    };
                    ana_err += ((p - lat[i]) / lat[i]).abs();
                    n += 1;
                }
            }
        }
        let soft_cell = if k >= 4 {
            format!("{:.2} %", 100.0 * soft_err / n as f64)
        } else {
            "-".to_string()
        };
        println!(
            "| {k} | {:.2} % | {soft_cell} | {:.2} % |",
            100.0 * law_err / n as f64,
            100.0 * ana_err / n as f64
        );
    }
    Ok(())
}
