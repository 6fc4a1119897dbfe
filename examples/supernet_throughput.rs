//! Training throughput of the supernet's subnet-sampling loop (sandwich rule with in-place
//! distillation on the `ofa_mnist` space, batches of synthetic 1x28x28 images), the Rust side
//! of the comparison with `benches/supernet_throughput.py`.
//!
//! ```text
//! cargo run --release -p dynas-supernet --example supernet_throughput -- --steps 30 --warmup 5 --threads 2
//! ```

use clap::Parser;
use std::time::Instant;

use dynas_space::MbConvSpace;
use dynas_supernet::{
    Batch, Normalization, Schedule, Supernet, SupernetConfig, TrainParams, Trainer, cosine_lr,
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
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        steps,
        warmup,
        batch_size,
        random,
        threads,
    } = Args::parse();
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    tch::manual_seed(0);
    let device = Device::cuda_if_available();
    let mut supernet = Supernet::new(MbConvSpace::ofa_mnist(), SupernetConfig::default(), device)?;
    let params = TrainParams {
        schedule: Schedule::all_elastic(1),
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
    let run = |trainer: &mut Trainer<'_>| -> Result<usize, Box<dyn std::error::Error>> {
        let subnets = trainer.sandwich()?;
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
            "batch_size": batch_size, "seconds": dt,
            "images_per_s": (steps * batch_size) as f64 / dt,
            "subnet_images_per_s": (subnets * batch_size) as f64 / dt,
        })
    );
    Ok(())
}
