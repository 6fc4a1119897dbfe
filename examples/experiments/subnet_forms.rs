//! Times subnets of the Fashion-MNIST supernet on this host in the two forms a runtime could
//! keep resident: as extracted ([`Subnet::predict`]: separate batch norms, per-call slicing)
//! and deployed ([`Subnet::deployed`]: batch norm folded, channels-last), interleaved, batch 1,
//! at 1 and 2 threads. Members of a pre-sampled family and the space's smallest and largest
//! subnets; prints each one's median and the family's latency span in both forms.
//!
//! `cargo run --release -p dynas-supernet --example subnet_forms -- [--supernet FILE]
//! [--family DIR] [--rounds R]`

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use dynas_search::deployment::Deployment;
use dynas_space::{MbConvSpace, SearchSpace};
use dynas_supernet::{BnStore, Subnet, Supernet, SupernetConfig};
use tch::{Device, Kind, Tensor};

/// Interleaved timing of extracted against deployed subnets.
#[derive(Parser)]
struct Options {
    /// Trained supernet weights.
    #[arg(long, default_value = "runs/fmnist/supernet.safetensors")]
    supernet: PathBuf,
    /// A pre-sampled family (`deployment.json` and `bn_store.safetensors`).
    #[arg(long, default_value = "runs/dofa")]
    family: PathBuf,
    /// Interleaved rounds of 20 calls per subnet and form.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    let space = MbConvSpace::ofa_mnist();
    let mut supernet = Supernet::new(space.clone(), SupernetConfig::default(), Device::Cpu)?;
    supernet.load(&options.supernet)?;
    let deployment = Deployment::from_json_file(options.family.join("deployment.json"))?;
    let bn = BnStore::load(options.family.join("bn_store.safetensors"), &supernet)?;
    let mut subnets: Vec<(String, Subnet)> = Vec::new();
    for (i, point) in deployment.points.iter().enumerate() {
        bn.activate(&supernet, &point.genotype)?;
        subnets.push((
            format!("member {i}"),
            supernet.extract_genotype(&point.genotype)?,
        ));
    }
    // Timing only: their batch-norm statistics are whatever the supernet holds.
    subnets.push((
        "smallest".into(),
        supernet.extract_genotype(&space.smallest())?,
    ));
    subnets.push((
        "largest".into(),
        supernet.extract_genotype(&space.largest())?,
    ));
    let deployed = subnets
        .iter()
        .map(|(_, s)| s.deployed())
        .collect::<Result<Vec<_>, _>>()?;
    let x = Tensor::randn([1, 1, 28, 28], (Kind::Float, Device::Cpu));
    for threads in [1, 2] {
        tch::set_num_threads(threads);
        let mut times = vec![(Vec::new(), Vec::new()); subnets.len()];
        for round in 0..=options.rounds {
            for (i, ((_, subnet), fast)) in subnets.iter().zip(&deployed).enumerate() {
                for _ in 0..20 {
                    let t = Instant::now();
                    drop(subnet.predict(&x)?);
                    let extracted = t.elapsed().as_secs_f64() * 1e3;
                    let t = Instant::now();
                    drop(fast.predict(&x)?);
                    let deployed = t.elapsed().as_secs_f64() * 1e3;
                    // Round 0 warms up.
                    if round > 0 {
                        times[i].0.push(extracted);
                        times[i].1.push(deployed);
                    }
                }
            }
        }
        println!("{threads} thread(s), batch 1, medians (extracted -> deployed):");
        let mut family = (Vec::new(), Vec::new());
        for (i, ((name, subnet), (e, d))) in subnets.iter().zip(times).enumerate() {
            let (e, d) = (median(e), median(d));
            println!(
                "  {name:>9}: {e:.3} -> {d:.3} ms ({:.2}x), {:.1} M MACs",
                e / d,
                subnet.network().macs() as f64 / 1e6
            );
            if i < deployment.points.len() {
                family.0.push(e);
                family.1.push(d);
            }
        }
        let span = |v: &[f64]| {
            v.iter().copied().fold(f64::MIN, f64::max) / v.iter().copied().fold(f64::MAX, f64::min)
        };
        println!(
            "  family span: {:.2}x extracted, {:.2}x deployed",
            span(&family.0),
            span(&family.1)
        );
    }
    Ok(())
}
