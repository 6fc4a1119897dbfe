//! Trains a once-for-all supernet of the small 28x28 `ofa_mnist` space on Fashion-MNIST,
//! saves it, and reports subnet accuracies (largest, smallest, and sampled subnets against
//! MACs), plus extraction and batch-norm recalibration times.
//!
//! ```text
//! cargo run --release -p dynas-supernet --example supernet_fashion_mnist -- \
//!     --epochs 1 --train-limit 5000 --out runs/fmnist-short
//! ```
//!
//! Flags: `--data DIR` (IDX files, plain or .gz; default `/usr/share/datasets/fashion-mnist`),
//! `--epochs N`, `--out DIR`, `--batch-size N`, `--lr F`, `--random-subnets N`,
//! `--schedule all|ps`, `--train-limit N` (use the first N training images), `--val N`,
//! `--samples N` (subnets for the accuracy-vs-MACs curve), `--sample-eval N` (test images
//! they are evaluated on, default 2000), `--calib-batches K`, `--seed N`,
//! `--threads N`, `--resume FILE`, `--no-progress`, and for the training recipe `--pad N`
//! (random-crop padding, default 2; 0 disables the crop), `--no-flip`, `--label-smoothing F`,
//! `--distill-weight F`, `--weight-decay F`.

use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

use dynas_space::{MbConvSpace, SearchSpace, seeded_rng};
use dynas_supernet::{
    AccuracyEstimator, Augmentation, BnStore, Dataset, Schedule, Split, SplitRecord, Supernet,
    SupernetConfig, SupernetError, TrainParams, Trainer, write_samples_csv, write_samples_json,
};

/// Trains the OFA-MNIST supernet on Fashion-MNIST and reports accuracy versus MACs.
#[derive(Parser)]
struct Args {
    /// Fashion-MNIST IDX files (plain or .gz).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Training epochs.
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Output folder.
    #[arg(long, default_value = "runs/fmnist")]
    out: PathBuf,
    /// Images per batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Random subnets per step besides the largest and the smallest.
    #[arg(long, default_value_t = 2)]
    random_subnets: usize,
    /// Elastic schedule: all dimensions at once, or once-for-all progressive shrinking.
    #[arg(long, value_enum, default_value_t = ScheduleName::All)]
    schedule: ScheduleName,
    /// Use the first N training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Validation images split off the training set.
    #[arg(long, default_value_t = 5000)]
    val: usize,
    /// Subnets for the accuracy-vs-MACs curve.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Batches of BN recalibration per subnet.
    #[arg(long, default_value_t = 20)]
    calib_batches: usize,
    /// Test images the sampled subnets are evaluated on.
    #[arg(long, default_value_t = 2000)]
    sample_eval: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Resume from this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Random-crop padding (0 disables the crop).
    #[arg(long, default_value_t = 2)]
    pad: usize,
    /// No random horizontal flips.
    #[arg(long)]
    no_flip: bool,
    /// Label smoothing.
    #[arg(long, default_value_t = TrainParams::default().label_smoothing)]
    label_smoothing: f64,
    /// Weight of the in-place distillation loss.
    #[arg(long, default_value_t = TrainParams::default().distill_weight)]
    distill_weight: f64,
    /// Weight decay.
    #[arg(long, default_value_t = TrainParams::default().weight_decay)]
    weight_decay: f64,
}

/// The training schedules, as `--schedule` spells them.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ScheduleName {
    /// Every elastic dimension from the first epoch.
    All,
    /// Once-for-all progressive shrinking.
    Ps,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    tch::manual_seed(args.seed as i64);
    let device = tch::Device::cuda_if_available();
    std::fs::create_dir_all(&args.out).map_err(|e| SupernetError::io(&args.out, e))?;

    let full = Dataset::mnist_dir(&args.data, Split::Train)?;
    let test = Dataset::mnist_dir(&args.data, Split::Test)?;
    // Validation images are held out of the whole training split first, then training takes a
    // prefix of the rest; the record is saved beside the supernet, so every later run (HADAS,
    // pre-sampling, serving) can prove its validation images were never trained on.
    let split = SplitRecord {
        validation_images: args.val.min(full.len() / 5).max(1),
        seed: args.seed,
        train_images: args.train_limit.unwrap_or(full.len()),
    };
    let (train, val) = split.split(&full)?;
    let norm = train.channel_stats();
    println!(
        "data: {} train / {} validation / {} test images, device {device:?}, {} torch threads",
        train.len(),
        val.len(),
        test.len(),
        tch::get_num_threads()
    );

    let space = MbConvSpace::ofa_mnist();
    let mut supernet = Supernet::new(space.clone(), SupernetConfig::default(), device)?;
    let schedule = match args.schedule {
        ScheduleName::Ps => {
            // Once-for-all progressive shrinking: 40% full, 20% kernel, 20% depth, 20% expand.
            let e = args.epochs;
            let full = (e * 2).div_ceil(5);
            let rest = e - full;
            Schedule::progressive_shrinking(full, rest / 3, rest / 3, rest - 2 * (rest / 3))
        }
        ScheduleName::All => Schedule::all_elastic(args.epochs),
    };
    let params = TrainParams {
        schedule,
        batch_size: args.batch_size,
        lr: args.lr,
        random_subnets: args.random_subnets,
        augmentation: Augmentation {
            pad: args.pad,
            horizontal_flip: !args.no_flip,
        },
        label_smoothing: args.label_smoothing,
        distill_weight: args.distill_weight,
        weight_decay: args.weight_decay,
        seed: args.seed,
        progress: !args.no_progress,
        ..TrainParams::default()
    };
    let config = params.check()?;
    let ckpt = args.out.join("checkpoint.safetensors");
    let largest = space.largest();
    let smallest = space.smallest();
    let mut log = Vec::new();
    {
        let mut trainer = Trainer::new(&mut supernet, config, norm.clone());
        if let Some(path) = &args.resume {
            trainer.resume(path)?;
            println!(
                "resumed from {} at epoch {}",
                path.display(),
                trainer.epoch()
            );
        }
        let start = Instant::now();
        while !trainer.finished() {
            let s = trainer.train_epoch(&train)?;
            trainer.save_checkpoint(&ckpt)?;
            let est = AccuracyEstimator::new(
                trainer.supernet(),
                &train,
                &val,
                norm.clone(),
                args.calib_batches,
                256,
            )?;
            let (acc_l, acc_s) = (est.estimate(&largest)?, est.estimate(&smallest)?);
            println!(
                "epoch {:>2}: loss(largest) {:.4} mean {:.4} train-acc {:.4} | val largest {:.4} smallest {:.4} | {:.0} img/s ({:.0} subnet-img/s) {:.0}s, total {:.0}s",
                s.epoch + 1,
                s.loss_largest,
                s.loss_mean,
                s.train_acc_largest,
                acc_l,
                acc_s,
                s.images as f64 / s.seconds,
                s.subnet_images as f64 / s.seconds,
                s.seconds,
                start.elapsed().as_secs_f64()
            );
            log.push(serde_json::json!({
                "epoch": s.epoch + 1, "loss_largest": s.loss_largest, "loss_mean": s.loss_mean,
                "train_acc_largest": s.train_acc_largest, "val_largest": acc_l,
                "val_smallest": acc_s, "images_per_s": s.images as f64 / s.seconds,
                "subnet_images_per_s": s.subnet_images as f64 / s.seconds, "seconds": s.seconds,
            }));
        }
    }
    supernet.save(args.out.join("supernet.safetensors"))?;
    split.save_beside(&args.out.join("supernet.safetensors"))?;

    // Test accuracies (BN recalibrated on training batches), stored per subnet.
    let est = AccuracyEstimator::new(
        &supernet,
        &train,
        &test,
        norm.clone(),
        args.calib_batches,
        256,
    )?;
    let mut store = BnStore::new();
    let acc_largest = est.estimate_and_store(&largest, &mut store)?;
    let acc_smallest = est.estimate_and_store(&smallest, &mut store)?;
    let (net_l, net_s) = (space.decode(&largest)?, space.decode(&smallest)?);
    println!(
        "test accuracy: largest {:.4} ({} MACs), smallest {:.4} ({} MACs)",
        acc_largest,
        net_l.macs(),
        acc_smallest,
        net_s.macs()
    );

    // Accuracy against MACs of sampled subnets (on the first `--sample-eval` test images).
    let sample_test = test.subset(&(0..args.sample_eval.clamp(1, test.len())).collect::<Vec<_>>());
    let sample_est = AccuracyEstimator::new(
        &supernet,
        &train,
        &sample_test,
        norm.clone(),
        args.calib_batches,
        256,
    )?;
    let mut srng = seeded_rng(args.seed + 1);
    let mut samples = Vec::new();
    for _ in 0..args.samples {
        let g = space.canonical(&space.sample(&mut srng))?;
        let s = sample_est.sample(&g)?;
        store.capture(&supernet, &g)?;
        println!(
            "  {:>9} MACs  acc {:.4}  {}",
            s.macs, s.accuracy, s.description
        );
        samples.push(s);
    }
    samples.sort_by_key(|s| s.macs);
    write_samples_json(args.out.join("samples.json"), &samples)?;
    write_samples_csv(args.out.join("samples.csv"), &samples)?;
    store.save(args.out.join("bn_store.safetensors"))?;

    // Extraction and recalibration times (median of 5).
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut extract_ms = Vec::new();
    let mut recal_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let sub = supernet.extract(&net_l)?;
        extract_ms.push(t.elapsed().as_secs_f64() * 1e3);
        drop(sub);
        let t = Instant::now();
        est.recalibrate(&largest)?;
        recal_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let t = Instant::now();
    store.activate(&supernet, &smallest)?;
    let switch_ms = t.elapsed().as_secs_f64() * 1e3;
    let extracted = supernet.extract(&net_l)?;
    extracted.save(args.out.join("largest_subnet.safetensors"))?;
    println!(
        "extract largest: {:.2} ms; BN recalibration ({} batches of 256): {:.1} ms; stored-BN switch: {:.3} ms",
        median(extract_ms.clone()),
        args.calib_batches,
        median(recal_ms.clone()),
        switch_ms
    );
    let summary = serde_json::json!({
        "epochs": log, "test_largest": acc_largest, "test_smallest": acc_smallest,
        "macs_largest": net_l.macs(), "macs_smallest": net_s.macs(),
        "extract_ms_median": median(extract_ms), "recalibrate_ms_median": median(recal_ms),
        "calib_batches": args.calib_batches, "switch_ms": switch_ms,
        "threads": tch::get_num_threads(),
    });
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .map_err(|e| SupernetError::io(&path, e))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
