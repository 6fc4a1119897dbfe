//! Early exits on Fashion-MNIST: train a small CNN backbone (or load it), attach HADAS heads
//! after blocks 1-3, train them with the backbone frozen (CE + distillation, BN recalibration),
//! calibrate max-softmax thresholds on a validation split for at most 1 point of accuracy loss,
//! and report, on the held-out test split, average MACs and measured host latency of dynamic
//! inference against the full network (batch size 1 and batches).
//!
//! Run: `CARGO_TARGET_DIR=target-tch cargo run --release -p dynas-exits --features tch \
//!       --example exits_fashion_mnist -- [data dir] [run dir] [epochs] [train limit]`

use clap::Parser;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dynas_exits::{
    Backbone, ConfidenceMeasure, DynamicNet, ExitCosts, ExitHead, ExitHeads, ExitPolicy,
    ExitPosition, ExitTable, HeadTraining, ThresholdCalibration,
};
use dynas_space::{Activation, Layer, Network, TensorShape};
use tch::nn::{self, Module, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn read_idx(path: &Path) -> AnyResult<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn load(dir: &Path, prefix: &str) -> AnyResult<(Tensor, Tensor)> {
    let img = read_idx(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")))?;
    let lab = read_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")))?;
    if img.len() < 16 || lab.len() < 8 {
        return Err(format!("{prefix}: truncated IDX files").into());
    }
    let n = u32::from_be_bytes([img[4], img[5], img[6], img[7]]) as i64;
    if img.len() as i64 != 16 + n * 784 || lab.len() as i64 != 8 + n {
        return Err(format!("{prefix}: IDX sizes do not match {n} images").into());
    }
    let x = Tensor::from_slice(&img[16..])
        .view([n, 1, 28, 28])
        .to_kind(Kind::Float)
        / 255.0;
    let x = (x - 0.2860) / 0.3530;
    let y = Tensor::from_slice(&lab[8..]).to_kind(Kind::Int64);
    Ok((x, y))
}

/// conv-BN-ReLU blocks: 1->16 (28x28), 16->32 s2 (14x14), 32->32, 32->64 s2 (7x7), 64->64,
/// then global pooling and a linear classifier.
struct Cnn {
    vs: nn::VarStore,
    convs: Vec<nn::Conv2D>,
    bns: Vec<nn::BatchNorm>,
    fc: nn::Linear,
}

const CH: [i64; 6] = [1, 16, 32, 32, 64, 64];
const STRIDE: [i64; 5] = [1, 2, 1, 2, 1];

impl Cnn {
    fn new() -> Self {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for i in 0..5 {
            let p = &root / format!("block{i}");
            convs.push(nn::conv2d(
                &p / "conv",
                CH[i],
                CH[i + 1],
                3,
                nn::ConvConfig {
                    stride: STRIDE[i],
                    padding: 1,
                    bias: false,
                    ..Default::default()
                },
            ));
            bns.push(nn::batch_norm2d(&p / "bn", CH[i + 1], Default::default()));
        }
        let fc = nn::linear(&root / "fc", 64, 10, Default::default());
        Self { vs, convs, bns, fc }
    }

    fn block_t(&self, i: usize, x: &Tensor, train: bool) -> Tensor {
        self.bns[i]
            .forward_t(&self.convs[i].forward(x), train)
            .relu()
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        for i in 0..5 {
            h = self.block_t(i, &h, train);
        }
        self.logits(&h)
    }

    fn logits(&self, features: &Tensor) -> Tensor {
        self.fc
            .forward(&features.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}

impl Backbone for Cnn {
    fn num_blocks(&self) -> usize {
        5
    }
    fn block_channels(&self, block: usize) -> i64 {
        CH[block + 1]
    }
    fn forward_block(&self, block: usize, x: &Tensor) -> dynas_exits::Result<Tensor> {
        Ok(self.block_t(block, x, false))
    }
    fn classify(&self, features: &Tensor) -> dynas_exits::Result<Tensor> {
        Ok(self.logits(features))
    }
    fn network(&self) -> Network {
        let mut shape = TensorShape::new(1, 28, 28);
        let mut layers = Vec::new();
        for i in 0..5 {
            let l = Layer::conv(
                format!("block{i}"),
                shape,
                CH[i + 1] as usize,
                3,
                STRIDE[i] as usize,
                Activation::Relu,
            );
            shape = l.output();
            layers.push(l);
        }
        layers.push(Layer::global_avg_pool("pool", shape));
        layers.push(Layer::linear("fc", 64, 10));
        Network::new(TensorShape::new(1, 28, 28), layers)
    }
}

fn accuracy(pred: &Tensor, y: &Tensor) -> f64 {
    pred.eq_tensor(y)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// A small CNN with exit heads trained on Fashion-MNIST, thresholds calibrated, test figures.
#[derive(Parser)]
struct Args {
    /// Fashion-MNIST IDX files.
    #[arg(default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Output folder.
    #[arg(default_value = "runs/exits-fmnist")]
    run: PathBuf,
    /// Training epochs.
    #[arg(default_value_t = 4)]
    epochs: usize,
    /// Training images used.
    #[arg(default_value_t = 60_000)]
    train_limit: i64,
}

fn main() -> AnyResult<()> {
    let Args {
        data,
        run,
        epochs,
        train_limit,
    } = Args::parse();
    std::fs::create_dir_all(&run)?;
    tch::manual_seed(0);
    let (x_train, y_train) = load(&data, "train")?;
    let keep = train_limit.clamp(1, x_train.size()[0]);
    let (x_train, y_train) = (x_train.narrow(0, 0, keep), y_train.narrow(0, 0, keep));
    let (x_test_all, y_test_all) = load(&data, "t10k")?;
    // Validation (threshold calibration) = first half of t10k, test = second half.
    let (x_val, y_val) = (x_test_all.narrow(0, 0, 5000), y_test_all.narrow(0, 0, 5000));
    let (x_test, y_test) = (
        x_test_all.narrow(0, 5000, 5000),
        y_test_all.narrow(0, 5000, 5000),
    );

    let mut net = Cnn::new();
    let backbone_file = run.join("backbone.safetensors");
    if backbone_file.exists() {
        net.vs.load(&backbone_file)?;
        println!("loaded backbone from {}", backbone_file.display());
    } else {
        let mut opt = nn::Adam::default().build(&net.vs, 2e-3)?;
        let n = x_train.size()[0];
        for epoch in 0..epochs {
            let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
            let t0 = Instant::now();
            for start in (0..n).step_by(128) {
                let idx = perm.narrow(0, start, 128.min(n - start));
                let loss = net
                    .forward_t(&x_train.index_select(0, &idx), true)
                    .cross_entropy_for_logits(&y_train.index_select(0, &idx));
                opt.backward_step(&loss);
            }
            let acc =
                tch::no_grad(|| accuracy(&net.forward_t(&x_val, false).argmax(-1, false), &y_val));
            println!(
                "backbone epoch {epoch}: val top-1 {:.2} % ({:.0} s)",
                100.0 * acc,
                t0.elapsed().as_secs_f64()
            );
        }
        net.vs.save(&backbone_file)?;
    }

    let head_blocks = vec![1usize, 2, 3];
    let spec = ExitHead::new(16, Activation::Relu, 10)?;
    let mut heads = ExitHeads::new(&net, head_blocks.clone(), spec, Device::Cpu)?;
    let heads_file = run.join("exits.safetensors");
    if heads_file.exists() {
        heads.load(&heads_file, None)?;
        println!("loaded heads from {}", heads_file.display());
    } else {
        let cfg = HeadTraining::new(epochs.max(1), 128, 3e-3, 4.0, 0.5, 0)?;
        let t0 = Instant::now();
        let report = heads.train(&net, &x_train, &y_train, &cfg)?;
        println!(
            "heads: losses {:?} ({:.0} s)",
            report.epoch_losses,
            t0.elapsed().as_secs_f64()
        );
        heads.save(&heads_file, Some(&net.vs))?;
    }

    let network = net.network();
    let positions: Vec<ExitPosition> = head_blocks
        .iter()
        .map(|&b| ExitPosition::new(format!("b{b}"), b))
        .collect();
    // MACs-only accounting: the MACs proxy model reads "latency" as millions of MACs.
    let costs = ExitCosts::compute(
        &network,
        &positions,
        &spec,
        &dynas_cost::MacsModel::mega_macs(),
        &Default::default(),
    )?;
    let val_out = heads.outputs(&net, &x_val, &y_val, 500)?;
    let table = ExitTable::from_outputs(positions.clone(), &val_out, None)?;
    let exits: Vec<usize> = (0..head_blocks.len()).collect();
    let cal = ThresholdCalibration::new(0.01, ConfidenceMeasure::MaxSoftmax, 64)?;
    let chosen = table.calibrate(&exits, &cal, Some(&costs))?;
    println!(
        "validation: final {:.2} %, per-exit {:?}, chosen {:?}",
        100.0 * table.final_accuracy(),
        (0..exits.len())
            .map(|c| table.accuracy(c))
            .collect::<Vec<_>>(),
        chosen.selection.rule()
    );

    // Held-out test split: the same thresholds.
    let test_out = heads.outputs(&net, &x_test, &y_test, 500)?;
    let test_table = ExitTable::from_outputs(positions, &test_out, None)?;
    let st = test_table.evaluate(&chosen.selection)?;
    let e = st.expected_cost(&costs)?;
    println!(
        "test: full {:.2} % at {:.3} M MACs; dynamic {:.2} % at {:.3} M MACs ({:.2}x fewer); exit rates {:?}",
        100.0 * test_table.final_accuracy(),
        costs.full().macs / 1e6,
        100.0 * st.accuracy,
        e.macs / 1e6,
        costs.full().macs / e.macs,
        st.rates
    );

    // Host latency: dynamic inference vs the full network.
    let thresholds = chosen.selection.rule().clone();
    let policy = ExitPolicy::new(thresholds, exits.len())?;
    let dynamic = DynamicNet::new(&net, &heads, policy)?;
    tch::set_num_threads(1);
    // Full and dynamic inference alternate on every batch, so that load changes on the host
    // hit both sides alike.
    let interleaved = |batch: i64, images: i64| -> Result<(f64, f64), Box<dyn std::error::Error>> {
        let (mut full, mut dynm) = (0.0, 0.0);
        for (k, start) in (0..images).step_by(batch as usize).enumerate() {
            let x = x_test.narrow(0, start, batch.min(images - start));
            let run_full = || {
                let t0 = Instant::now();
                let _ = tch::no_grad(|| net.forward_t(&x, false));
                t0.elapsed().as_secs_f64()
            };
            let run_dynamic = || -> Result<f64, Box<dyn std::error::Error>> {
                let t0 = Instant::now();
                let _ = dynamic.infer(&x)?;
                Ok(t0.elapsed().as_secs_f64())
            };
            // Alternate which side goes first.
            if k % 2 == 0 {
                full += run_full();
                dynm += run_dynamic()?;
            } else {
                dynm += run_dynamic()?;
                full += run_full();
            }
        }
        Ok((full * 1e3 / images as f64, dynm * 1e3 / images as f64))
    };
    let (full_ms, dyn_ms) = interleaved(1, 2000)?;
    println!(
        "batch 1 (1 thread, interleaved): full {full_ms:.4} ms, dynamic {dyn_ms:.4} ms per image ({:.2}x)",
        full_ms / dyn_ms
    );
    for batch in [64i64, 500] {
        let (full, dynm) = interleaved(batch, 5000)?;
        println!(
            "batch {batch} (1 thread, interleaved): full {full:.4} ms, dynamic {dynm:.4} ms per image ({:.2}x)",
            full / dynm
        );
    }
    Ok(())
}
