//! Training throughput of the supernet's subnet-sampling loop (sandwich rule with in-place
//! distillation on the `ofa_mnist` space, batches of synthetic 1x28x28 images), the Rust side
//! of the comparison with `benches/supernet_throughput.py`.
//!
//! ```text
//! cargo run --release -p dynas-supernet --example supernet_throughput -- --steps 30 --warmup 5 \
//!     --threads 2 [--subnets runs/throughput-subnets.json]
//! ```
//!
//! With `--subnets PATH` the subnets of every step (warm-up included) come from that file, so
//! the PyTorch side (which reads the same file) trains exactly the same ones; when the file does
//! not exist they are drawn (seed 0, the trainer's sandwich rule) and written there first. The
//! file is a JSON list of steps, each a list of subnets as `{dimension name: choice label}`;
//! `--list-only 1` stops there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use std::time::Instant;

use dynas_space::{Genotype, MbConvSpace, SearchSpace, seeded_rng};
use dynas_supernet::{
    Batch, Normalization, Schedule, SubnetSampler, Supernet, SupernetConfig, TrainParams, Trainer,
    cosine_lr,
};
use tch::{Device, Kind, Tensor};

/// Training throughput of the supernet's subnet-sampling loop on synthetic batches.
#[derive(Parser)]
struct Args {
    /// Timed steps.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Random subnets per step besides the largest and the smallest.
    #[arg(long = "random-subnets", default_value_t = 2)]
    random: usize,
    /// libtorch threads (0: libtorch's choice).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// JSON list of the subnets of every step, shared with the PyTorch side (drawn and
    /// written when missing).
    #[arg(long)]
    subnets: Option<PathBuf>,
    /// With 1, only draw (or check) the subnet list.
    #[arg(long, default_value_t = 0)]
    list_only: usize,
}

type Subnets = Vec<Vec<BTreeMap<String, String>>>;

/// The subnets of `count` steps: read from `path`, or drawn with the sandwich rule and written.
fn subnet_list(
    space: &MbConvSpace,
    schedule: &Schedule,
    random: usize,
    count: usize,
    path: &PathBuf,
) -> Result<Vec<Vec<Genotype>>, Box<dyn std::error::Error>> {
    let dims = space.dimensions();
    let list: Subnets = if path.exists() {
        serde_json::from_str(&std::fs::read_to_string(path)?)?
    } else {
        let sampler = SubnetSampler::new(space);
        let elastic = schedule.phase(0).elastic.clone();
        let mut rng = seeded_rng(0);
        let list: Subnets = (0..count)
            .map(|_| {
                let mut step = vec![sampler.largest(), sampler.smallest(&elastic)];
                step.extend((0..random).map(|_| sampler.sample(&elastic, &mut rng)));
                step.iter()
                    .map(|g| {
                        dims.iter()
                            .zip(g.genes())
                            .map(|(d, &v)| (d.name().to_string(), d.labels()[v].clone()))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string(&list)?)?;
        list
    };
    if list.len() < count {
        return Err(format!(
            "{} lists {} steps, {count} needed",
            path.display(),
            list.len()
        )
        .into());
    }
    list.iter()
        .take(count)
        .map(|step| {
            step.iter()
                .map(|subnet| {
                    let genes = dims
                        .iter()
                        .map(|d| {
                            let label = subnet.get(d.name()).ok_or(format!("no {}", d.name()))?;
                            d.index_of(label)
                                .ok_or_else(|| format!("{}: no choice {label}", d.name()).into())
                        })
                        .collect::<Result<Vec<usize>, Box<dyn std::error::Error>>>()?;
                    Ok(Genotype::new(genes))
                })
                .collect()
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        steps,
        warmup,
        batch_size,
        random,
        threads,
        subnets: subnets_path,
        list_only,
    } = Args::parse();
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    tch::manual_seed(0);
    let device = Device::cuda_if_available();
    let space = MbConvSpace::ofa_mnist();
    let schedule = Schedule::all_elastic(1);
    let fixed = match &subnets_path {
        Some(path) => Some(subnet_list(
            &space,
            &schedule,
            random,
            warmup + steps,
            path,
        )?),
        None => None,
    };
    if list_only > 0 {
        // Only draw (or check) the subnet list.
        return Ok(());
    }
    let mut supernet = Supernet::new(space, SupernetConfig::default(), device)?;
    let params = TrainParams {
        schedule,
        batch_size,
        random_subnets: random,
        progress: false,
        ..TrainParams::default()
    };
    let norm = Normalization {
        mean: vec![0.0],
        std: vec![1.0],
    };
    let mut trainer = Trainer::new(&mut supernet, params.check()?, norm);
    let batch = Batch {
        images: Tensor::randn([batch_size as i64, 1, 28, 28], (Kind::Float, device)),
        labels: Tensor::randint(10, [batch_size as i64], (Kind::Int64, device)),
    };
    let mut step_index = 0;
    let mut run = |trainer: &mut Trainer<'_>| -> Result<usize, Box<dyn std::error::Error>> {
        let subnets = match &fixed {
            Some(list) => list[step_index]
                .iter()
                .map(|g| trainer.supernet().network(g))
                .collect::<Result<Vec<_>, _>>()?,
            None => trainer.sandwich()?,
        };
        step_index += 1;
        let lr = cosine_lr(0.1, trainer.step(), 0, (steps + warmup) as u64);
        trainer.train_step(&batch, &subnets, lr)?;
        Ok(subnets.len())
    };
    for _ in 0..warmup {
        run(&mut trainer)?;
    }
    let start = Instant::now();
    let mut subnets = 0;
    for _ in 0..steps {
        subnets += run(&mut trainer)?;
    }
    let dt = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "impl": "dynas-supernet (tch)", "threads": tch::get_num_threads(), "steps": steps,
            "batch_size": batch_size, "seconds": dt, "subnets_file": subnets_path,
            "images_per_s": (steps * batch_size) as f64 / dt,
            "subnet_images_per_s": (subnets * batch_size) as f64 / dt,
        })
    );
    Ok(())
}
