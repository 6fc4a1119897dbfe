//! Early exits on a subnet of a trained Fashion-MNIST supernet: load the supernet written by
//! `supernet_fashion_mnist`, recalibrate batch norm for one subnet (the largest by default) and
//! extract it, attach HADAS exit heads after its blocks, train them with the backbone frozen
//! (CE + distillation, BN recalibration), calibrate max-softmax thresholds on a validation split
//! for at most `--max-drop` accuracy loss, and report on the held-out test split the average
//! MACs and the measured host latency of dynamic inference against the full subnet.
//!
//! ```text
//! cargo run --release -p dynas-supernet --example exits_supernet_fashion_mnist -- \
//!     --supernet runs/fmnist/supernet.safetensors --out runs/exits-supernet
//! ```
//!
//! Flags: `--data DIR` (default `/usr/share/datasets/fashion-mnist`), `--supernet FILE`,
//! `--out DIR`, `--genotype G` (compact form, e.g. `1-2-2-...`; default the largest),
//! `--head-epochs N` (default 3), `--head-width N` (default 16), `--max-drop F` (fraction,
//! default 0.01), `--calib-batches K` (BN recalibration, default 20), `--threads N`,
//! `--latency-samples N` (batch-1 timing, default 2000).

use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

use dynas_cost::MacsModel;
use dynas_exits::{
    Backbone, ConfidenceMeasure, DynamicNet, ExitCosts, ExitHead, ExitHeads, ExitPolicy,
    ExitPosition, ExitTable, HeadTraining, ThresholdCalibration,
};
use dynas_space::{Activation, Genotype, MbConvSpace, SearchSpace, seeded_rng};
use dynas_supernet::{
    Augmentation, Dataset, ExitPlan, Split, Supernet, SupernetConfig, SupernetError,
};
use tch::Device;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Exit heads on a trained supernet's subnet, calibrated thresholds, test-split figures.
#[derive(Parser)]
struct Args {
    /// Fashion-MNIST IDX files (plain or .gz).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// The trained supernet.
    #[arg(long, default_value = "runs/fmnist/supernet.safetensors")]
    supernet: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "runs/exits-supernet")]
    out: PathBuf,
    /// Subnet in compact form (e.g. `1-2-2-...`; default the largest).
    #[arg(long)]
    genotype: Option<String>,
    /// Training epochs of the exit heads.
    #[arg(long, default_value_t = 3)]
    head_epochs: usize,
    /// Hidden width of each exit head.
    #[arg(long, default_value_t = 16)]
    head_width: usize,
    /// Accuracy the exits may lose (fraction).
    #[arg(long, default_value_t = 0.01)]
    max_drop: f64,
    /// Batches of BN recalibration.
    #[arg(long, default_value_t = 20)]
    calib_batches: usize,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Batch-1 timing samples.
    #[arg(long, default_value_t = 2000)]
    latency_samples: i64,
}

fn main() -> AnyResult<()> {
    let args = Args::parse();
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    tch::manual_seed(0);
    std::fs::create_dir_all(&args.out).map_err(|e| SupernetError::io(&args.out, e))?;

    // The same split as supernet_fashion_mnist (seed 0, 5,000 validation images held out of
    // the training set), so BN statistics come from the supernet's training images only.
    let full = Dataset::mnist_dir(&args.data, Split::Train)?;
    let (train, _) = full.split_validation(5000, &mut seeded_rng(0))?;
    let test_all = Dataset::mnist_dir(&args.data, Split::Test)?;
    let norm = train.channel_stats();
    let all = |d: &Dataset| {
        d.batch(
            &(0..d.len()).collect::<Vec<_>>(),
            &norm,
            &Augmentation::NONE,
            &mut seeded_rng(0),
            Device::Cpu,
        )
    };
    let train_batch = all(&train);
    let test_batch = all(&test_all);
    // Threshold calibration on the first half of the test split, report on the second half.
    let half = test_batch.images.size()[0] / 2;
    let (x_val, y_val) = (
        test_batch.images.narrow(0, 0, half),
        test_batch.labels.narrow(0, 0, half),
    );
    let (x_test, y_test) = (
        test_batch.images.narrow(0, half, half),
        test_batch.labels.narrow(0, half, half),
    );

    let space = MbConvSpace::ofa_mnist();
    let mut supernet = Supernet::new(space.clone(), SupernetConfig::default(), Device::Cpu)?;
    supernet.load(&args.supernet)?;
    let genotype: Genotype = match &args.genotype {
        Some(text) => {
            let g: Genotype = text.parse()?;
            space.validate(&g)?;
            g
        }
        None => space.largest(),
    };
    let network = space.decode(&genotype)?;
    // Adaptive batch norm for this subnet on shuffled training batches, then extraction.
    let mut rng = seeded_rng(0);
    let batches = train
        .batches(256, true, &norm, Augmentation::NONE, &mut rng, Device::Cpu)
        .take(args.calib_batches.max(1));
    supernet.recalibrate_bn(&network, batches)?;
    let subnet = supernet.extract(&network)?;
    println!(
        "subnet {genotype}: {} blocks, {:.3} M MACs, {} parameters",
        subnet.num_blocks(),
        network.macs() as f64 / 1e6,
        subnet.num_parameters()
    );

    // A head after every block but the first conv and the last feature layer (whose head would
    // cost about as much as the classifier it replaces).
    let head_blocks: Vec<usize> = (1..subnet.num_blocks().saturating_sub(1)).collect();
    let spec = ExitHead::new(args.head_width, Activation::Relu, 10)?;
    let mut heads = ExitHeads::new(&subnet, head_blocks.clone(), spec, Device::Cpu)?;
    let cfg = HeadTraining::new(args.head_epochs.max(1), 128, 3e-3, 4.0, 0.5, 0)?;
    let t0 = Instant::now();
    let report = heads.train(&subnet, &train_batch.images, &train_batch.labels, &cfg)?;
    let train_s = t0.elapsed().as_secs_f64();
    println!("heads: losses {:?} ({train_s:.0} s)", report.epoch_losses);
    heads.save(args.out.join("exits.safetensors"), Some(subnet.var_store()))?;

    let positions: Vec<ExitPosition> = head_blocks
        .iter()
        .map(|&b| ExitPosition::new(network.layers[b].name.clone(), b))
        .collect();
    // The MACs proxy reads "latency" as millions of MACs.
    let costs = ExitCosts::compute(
        &network,
        &positions,
        &spec,
        &MacsModel::mega_macs(),
        &Default::default(),
    )?;
    let val_out = heads.outputs(&subnet, &x_val, &y_val, 500)?;
    let table = ExitTable::from_outputs(positions.clone(), &val_out, None)?;
    let exits: Vec<usize> = (0..head_blocks.len()).collect();
    let cal = ThresholdCalibration::new(args.max_drop, ConfidenceMeasure::MaxSoftmax, 64)?;
    let chosen = table.calibrate(&exits, &cal, Some(&costs))?;
    let per_exit: Vec<String> = (0..exits.len())
        .map(|c| format!("{:.1}", 100.0 * table.accuracy(c).unwrap_or(0.0)))
        .collect();
    println!(
        "validation: final {:.2} %, per-exit accuracy {per_exit:?}, thresholds {:?}",
        100.0 * table.final_accuracy(),
        chosen.selection.rule()
    );

    let test_out = heads.outputs(&subnet, &x_test, &y_test, 500)?;
    let test_table = ExitTable::from_outputs(positions, &test_out, None)?;
    let st = test_table.evaluate(&chosen.selection)?;
    let e = st.expected_cost(&costs)?;
    let rates: Vec<String> = st.rates.iter().map(|r| format!("{r:.3}")).collect();
    println!(
        "test: full {:.2} % at {:.3} M MACs; dynamic {:.2} % at {:.3} M MACs ({:.2}x fewer); exit rates {rates:?}",
        100.0 * test_table.final_accuracy(),
        costs.full().macs / 1e6,
        100.0 * st.accuracy,
        e.macs / 1e6,
        costs.full().macs / e.macs,
    );

    // Host latency of dynamic inference against the full subnet.
    let policy = ExitPolicy::new(chosen.selection.rule().clone(), exits.len())?;
    let dynamic = DynamicNet::new(&subnet, &heads, policy)?;
    let n_test = x_test.size()[0];
    let samples = args.latency_samples.clamp(1, n_test);
    // Full and dynamic inference alternate on every batch (and which goes first alternates),
    // so that load changes on the host hit both sides alike. Per-image ms, both sides.
    let interleaved = |batch: i64, images: i64| -> AnyResult<(f64, f64)> {
        let (mut full, mut dynm) = (0.0, 0.0);
        for (k, start) in (0..images).step_by(batch as usize).enumerate() {
            let x = x_test.narrow(0, start, batch.min(images - start));
            let run_full = || -> AnyResult<f64> {
                let t0 = Instant::now();
                subnet.predict(&x).map(drop)?;
                Ok(t0.elapsed().as_secs_f64())
            };
            let run_dynamic = || -> AnyResult<f64> {
                let t0 = Instant::now();
                dynamic.infer(&x).map(drop)?;
                Ok(t0.elapsed().as_secs_f64())
            };
            if k % 2 == 0 {
                full += run_full()?;
                dynm += run_dynamic()?;
            } else {
                dynm += run_dynamic()?;
                full += run_full()?;
            }
        }
        Ok((full * 1e3 / images as f64, dynm * 1e3 / images as f64))
    };
    let (full_ms, dyn_ms) = interleaved(1, samples)?;
    println!(
        "batch 1 ({} threads, interleaved): full {full_ms:.4} ms, dynamic {dyn_ms:.4} ms per image ({:.2}x)",
        tch::get_num_threads(),
        full_ms / dyn_ms
    );
    // The deployed form a runtime serves: batch norms folded, channels-last, the backbone block
    // by block and only the heads with a threshold that can fire, folded too (ExitPlan).
    let deployed = subnet.deployed()?;
    let thresholds = chosen
        .selection
        .rule()
        .thresholds()
        .ok_or("the calibration gave no thresholds")?;
    let plan = ExitPlan::new(&heads, &thresholds, deployed.num_blocks())?;
    let (mut static_s, mut dynamic_s, mut static_ok, mut dynamic_ok) = (0.0, 0.0, 0usize, 0usize);
    let labels = Vec::<i64>::try_from(&y_test)?;
    for i in 0..samples {
        let x = x_test.narrow(0, i, 1);
        let run_static = || -> AnyResult<(f64, i64)> {
            let t0 = Instant::now();
            let class = deployed.predict(&x)?.argmax(-1, false).int64_value(&[0]);
            Ok((t0.elapsed().as_secs_f64(), class))
        };
        let run_dynamic = || -> AnyResult<(f64, i64)> {
            let t0 = Instant::now();
            let (class, _) = plan.classify(&deployed, &x)?;
            Ok((t0.elapsed().as_secs_f64(), class))
        };
        let ((ts, cs), (td, cd)) = if i % 2 == 0 {
            let a = run_static()?;
            (a, run_dynamic()?)
        } else {
            let b = run_dynamic()?;
            (run_static()?, b)
        };
        static_s += ts;
        dynamic_s += td;
        static_ok += usize::from(cs == labels[i as usize]);
        dynamic_ok += usize::from(cd == labels[i as usize]);
    }
    let (deployed_static_ms, deployed_dynamic_ms) = (
        static_s * 1e3 / samples as f64,
        dynamic_s * 1e3 / samples as f64,
    );
    println!(
        "batch 1 deployed (interleaved, {samples} test images): static {deployed_static_ms:.4} ms \
         ({:.2} %), dynamic {deployed_dynamic_ms:.4} ms ({:.2} %) per image ({:.2}x)",
        100.0 * static_ok as f64 / samples as f64,
        100.0 * dynamic_ok as f64 / samples as f64,
        deployed_static_ms / deployed_dynamic_ms
    );
    let mut batched = Vec::new();
    for batch in [64i64, 500] {
        let (full, dynm) = interleaved(batch, n_test)?;
        println!(
            "batch {batch} (interleaved): full {full:.4} ms, dynamic {dynm:.4} ms per image ({:.2}x)",
            full / dynm
        );
        batched.push(serde_json::json!({"batch": batch, "full_ms": full, "dynamic_ms": dynm}));
    }
    let summary = serde_json::json!({
        "genotype": genotype.to_string(), "macs_full": costs.full().macs, "macs_dynamic": e.macs,
        "macs_ratio": costs.full().macs / e.macs, "test_full": test_table.final_accuracy(),
        "test_dynamic": st.accuracy, "exit_blocks": head_blocks, "exit_rates": st.rates,
        "val_final": table.final_accuracy(), "head_train_s": train_s,
        "batch1_full_ms": full_ms, "batch1_dynamic_ms": dyn_ms, "batched": batched,
        "batch1_deployed_static_ms": deployed_static_ms,
        "batch1_deployed_dynamic_ms": deployed_dynamic_ms,
        "batch1_deployed_static_top1": static_ok as f64 / samples as f64,
        "batch1_deployed_dynamic_top1": dynamic_ok as f64 / samples as f64,
        "threads": tch::get_num_threads(),
    });
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .map_err(|e| SupernetError::io(&path, e))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
