//! Exit heads with libtorch on a small hand-built backbone (CPU).

use std::cell::Cell;

use approx::assert_relative_eq;
use dynas_exits::{
    Backbone, DynamicNet, ExitHead, ExitHeads, ExitPolicy, ExitPosition, ExitRule, ExitSelection,
    ExitTable, HeadTraining,
};
use dynas_space::{Activation, Layer, Network, TensorShape};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Three conv blocks (1 -> 8 -> 16 -> 16 channels on 8x8 inputs) and a pooled linear classifier;
/// counts block evaluations per input.
struct SmallCnn {
    vs: nn::VarStore,
    blocks: Vec<nn::Conv2D>,
    fc: nn::Linear,
    runs: Cell<i64>,
}

const CH: [i64; 4] = [1, 8, 16, 16];
const STRIDE: [i64; 3] = [1, 2, 1];

impl SmallCnn {
    fn new() -> Self {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root() / "backbone";
        let blocks = (0..3)
            .map(|i| {
                nn::conv2d(
                    &root / format!("block{i}") / "conv",
                    CH[i],
                    CH[i + 1],
                    3,
                    nn::ConvConfig {
                        stride: STRIDE[i],
                        padding: 1,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let fc = nn::linear(&root / "fc", 16, 4, Default::default());
        Self {
            vs,
            blocks,
            fc,
            runs: Cell::new(0),
        }
    }
}

impl Backbone for SmallCnn {
    fn num_blocks(&self) -> usize {
        3
    }
    fn block_channels(&self, block: usize) -> i64 {
        CH[block + 1]
    }
    fn forward_block(&self, block: usize, x: &Tensor) -> dynas_exits::Result<Tensor> {
        self.runs.set(self.runs.get() + x.size()[0]);
        Ok(self.blocks[block].forward(x).relu())
    }
    fn classify(&self, features: &Tensor) -> dynas_exits::Result<Tensor> {
        Ok(self
            .fc
            .forward(&features.adaptive_avg_pool2d([1, 1]).flatten(1, -1)))
    }
    fn network(&self) -> Network {
        let mut shape = TensorShape::new(1, 8, 8);
        let mut layers = Vec::new();
        for i in 0..3 {
            let l = Layer::conv(
                format!("block{i}"),
                shape,
                CH[i + 1] as usize,
                3,
                STRIDE[i] as usize,
                Activation::Relu,
            )
            .without_batch_norm();
            shape = l.output();
            layers.push(l);
        }
        layers.push(Layer::global_avg_pool("pool", shape));
        layers.push(Layer::linear("fc", 16, 4));
        Network::new(TensorShape::new(1, 8, 8), layers)
    }
}

/// libtorch's random generator is process-wide and tests run on parallel threads: the tests
/// here seed and draw from it, so they take turns.
static LIBTORCH_GLOBALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn libtorch_turn() -> std::sync::MutexGuard<'static, ()> {
    LIBTORCH_GLOBALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Four classes: a bright quadrant, with noise; some inputs are easy (strong signal), some hard.
fn data(n: i64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let labels = Tensor::randint(4, [n], (Kind::Int64, Device::Cpu));
    let strength = Tensor::rand([n, 1, 1, 1], (Kind::Float, Device::Cpu)) * 2.0;
    let mut x = Tensor::randn([n, 1, 8, 8], (Kind::Float, Device::Cpu));
    let mask = Tensor::zeros([4, 1, 8, 8], (Kind::Float, Device::Cpu));
    for q in 0..4i64 {
        let _ = mask
            .get(q)
            .narrow(1, (q / 2) * 4, 4)
            .narrow(2, (q % 2) * 4, 4)
            .fill_(1.0);
    }
    x += mask.index_select(0, &labels) * strength;
    (x, labels)
}

fn trained_backbone() -> SmallCnn {
    let net = SmallCnn::new();
    let (x, y) = data(1024, 1);
    let mut opt = nn::Adam::default().build(&net.vs, 1e-2).expect("adam");
    for _ in 0..60 {
        let mut h = x.shallow_clone();
        for b in 0..3 {
            h = net.blocks[b].forward(&h).relu();
        }
        let loss = net
            .classify(&h)
            .expect("classify")
            .cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    net
}

fn accuracy(pred: &[i64], labels: &Tensor) -> f64 {
    let l = Vec::<i64>::try_from(labels).expect("labels");
    pred.iter().zip(&l).filter(|(a, b)| a == b).count() as f64 / l.len() as f64
}

#[test]
fn heads_train_recalibrate_save_load_and_exit_dynamically() {
    let _turn = libtorch_turn();
    let backbone = trained_backbone();
    let spec = ExitHead::new(8, Activation::Relu, 4).expect("spec");
    let mut heads = ExitHeads::new(&backbone, vec![0, 1], spec, Device::Cpu).expect("heads");
    let (x, y) = data(768, 2);
    let cfg = HeadTraining::new(4, 64, 1e-2, 3.0, 0.5, 7).expect("cfg");
    let report = heads.train(&backbone, &x, &y, &cfg).expect("train");
    assert!(
        report.epoch_losses.last() < report.epoch_losses.first(),
        "{report:?}"
    );

    // Validation outputs -> table; heads must beat chance (0.25) and be below the final.
    let (xv, yv) = data(512, 3);
    let out = heads.outputs(&backbone, &xv, &yv, 100).expect("outputs");
    let positions = vec![ExitPosition::new("b0", 0), ExitPosition::new("b1", 1)];
    let table = ExitTable::from_outputs(positions, &out, None).expect("table");
    assert!(
        table.accuracy(1).expect("col") > 0.4,
        "{:?}",
        table.accuracy(1)
    );
    assert!(table.final_accuracy() > 0.6, "{}", table.final_accuracy());

    // Dynamic inference agrees with the table, sample by sample in aggregate, batch and single.
    let rule = ExitRule::MaxSoftmax(vec![0.9, 0.7]);
    let stats = table
        .evaluate(&ExitSelection::new(vec![0, 1], rule.clone()).expect("sel"))
        .expect("eval");
    let policy = ExitPolicy::new(rule, 2).expect("policy");
    let dynamic = DynamicNet::new(&backbone, &heads, policy).expect("net");
    backbone.runs.set(0);
    let batch = dynamic.infer(&xv).expect("infer");
    assert_eq!(backbone.runs.get() as usize, batch.blocks_run);
    assert!(batch.blocks_run < 3 * 512, "some inputs must leave early");
    for slot in 0..3 {
        let rate = batch.exits.iter().filter(|&&e| e == slot).count() as f64 / 512.0;
        assert_relative_eq!(rate, stats.rates[slot], epsilon = 2.5e-3);
    }
    assert_relative_eq!(
        accuracy(&batch.predictions, &yv),
        stats.accuracy,
        epsilon = 2.5e-3
    );
    for s in [0i64, 17, 301] {
        let one = dynamic.infer(&xv.narrow(0, s, 1)).expect("single");
        assert_eq!(one.exits[0], batch.exits[s as usize]);
        assert_eq!(one.predictions[0], batch.predictions[s as usize]);
    }

    // Save heads with the backbone; load into fresh variables and get identical outputs.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exits.safetensors");
    heads.save(&path, Some(&backbone.vs)).expect("save");
    let mut other = ExitHeads::new(&backbone, vec![0, 1], spec, Device::Cpu).expect("heads");
    other.load(&path, None).expect("load");
    let again = other.outputs(&backbone, &xv, &yv, 100).expect("outputs");
    assert_eq!(again, out);
    let mut fresh = SmallCnn::new();
    other
        .load(&path, Some(&mut fresh.vs))
        .expect("load with backbone");
    let (a, b) = (
        backbone
            .classify(&xv.ones_like().narrow(1, 0, 1).repeat([1, 16, 1, 1]))
            .expect("classify"),
        fresh
            .classify(&xv.ones_like().narrow(1, 0, 1).repeat([1, 16, 1, 1]))
            .expect("classify"),
    );
    assert!(a.allclose(&b, 1e-6, 1e-6, false));

    // Bad files are typed errors naming the tensor.
    let wrong = ExitHeads::new(&backbone, vec![0, 2], spec, Device::Cpu).expect("heads");
    let mut wrong = wrong;
    let err = wrong.load(&path, None).expect_err("b2 is not in the file");
    assert!(err.to_string().contains("exits.b2"), "{err}");
    assert!(
        other
            .load(dir.path().join("missing.safetensors"), None)
            .is_err()
    );
}

#[test]
fn recalibration_sets_exact_statistics_and_inputs_are_checked() {
    let _turn = libtorch_turn();
    let backbone = SmallCnn::new();
    let spec = ExitHead::new(4, Activation::Relu, 4).expect("spec");
    assert!(ExitHeads::new(&backbone, vec![1, 0], spec, Device::Cpu).is_err());
    assert!(ExitHeads::new(&backbone, vec![3], spec, Device::Cpu).is_err());
    let mut heads = ExitHeads::new(&backbone, vec![2], spec, Device::Cpu).expect("heads");
    let (x, y) = data(64, 4);
    heads.recalibrate_bn(&backbone, &x, 10).expect("recal");
    // After recalibration, eval-mode BN output of the recalibration set has mean 0 per channel:
    // check through the saved running mean against a direct computation.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.safetensors");
    heads.save(&path, None).expect("save");
    let stored: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .expect("read")
        .into_iter()
        .collect();
    let w = &stored["exits.b2.conv.weight"];
    let mut h = x.shallow_clone();
    for b in 0..3 {
        h = backbone.forward_block(b, &h).expect("block");
    }
    let conv = h.conv2d(w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
    let mean = conv.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float);
    assert!(mean.allclose(&stored["exits.b2.bn.running_mean"], 1e-4, 1e-5, false));
    assert!(HeadTraining::new(0, 1, 1e-3, 1.0, 0.5, 0).is_err());
    assert!(HeadTraining::new(1, 1, 1e-3, 1.0, 1.5, 0).is_err());
    let mut bad = heads;
    assert!(
        bad.train(&backbone, &x, &y.narrow(0, 0, 10), &HeadTraining::default())
            .is_err()
    );
}
