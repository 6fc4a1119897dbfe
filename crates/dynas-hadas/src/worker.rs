//! A trained supernet as the accuracy and early-exit source of the HADAS search.
//!
//! libtorch tensors are not `Sync`, while the search's [`AccuracySource`] and [`ExitSource`]
//! must be. A [`SupernetWorker`] therefore owns the supernet and the data on one thread and
//! serves requests over a channel; [`SupernetAccuracy`] and [`SupernetExits`] are cheap handles
//! to it. Per backbone the worker:
//!
//! 1. recalibrates batch norm once on fixed training batches and keeps the statistics
//!    ([`BnStore`]), so later requests for that backbone switch to them without recalibration;
//! 2. scores top-1 on the **validation** split (never the test split);
//! 3. for exits: attaches a head after every admissible block (all but the first and the last
//!    feature block), trains the heads on the frozen backbone with distillation from the final
//!    classifier, and records every head's and the classifier's outputs on the validation split
//!    as an [`ExitTable`]. Heads are trained once per backbone and kept.
//!
//! [`SupernetWorker::test_outcome`] runs a deployed configuration (its exits and thresholds) on
//! the held-out test split, for the final report only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use dynas_exits::{
    ExitHead, ExitHeads, ExitPosition, ExitRule, ExitSelection, ExitStatistics, ExitTable,
    HeadTraining,
};
use dynas_search::{AccuracySource, DeployedExit, SearchError};
use dynas_space::{Activation, Genotype, Network, seeded_rng};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use dynas_supernet::data::{Augmentation, Dataset, Normalization};
use dynas_supernet::oracle::BnStore;
use dynas_supernet::supernet::{Subnet, Supernet};
use dynas_supernet::train::evaluate;
use dynas_supernet::{Result, SupernetError};

use crate::search::ExitSource;

/// Hyper-parameters of the supernet-backed evaluation (see [`SupernetEvalParams::check`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupernetEvalParams {
    /// Training batches used to recalibrate batch norm for each backbone (10).
    pub calibration_batches: usize,
    /// Batch size of recalibration and evaluation (256).
    pub batch_size: usize,
    /// Channels of each exit head's convolution (16).
    pub head_width: usize,
    /// Epochs of exit-head training on the frozen backbone (1).
    pub head_epochs: usize,
    /// Training images the heads see, the first of the training split (10,000).
    pub head_train_images: usize,
    /// Adam learning rate of head training (3e-3).
    pub head_learning_rate: f64,
    /// Distillation temperature from the final classifier (4).
    pub distill_temperature: f64,
    /// Weight of the distillation term against cross-entropy (0.5).
    pub distill_weight: f64,
    /// Seed of batch order and head initialisation (0).
    pub seed: u64,
}

impl Default for SupernetEvalParams {
    fn default() -> Self {
        Self {
            calibration_batches: 10,
            batch_size: 256,
            head_width: 16,
            head_epochs: 1,
            head_train_images: 10_000,
            head_learning_rate: 3e-3,
            distill_temperature: 4.0,
            distill_weight: 0.5,
            seed: 0,
        }
    }
}

/// [`SupernetEvalParams`] that passed [`SupernetEvalParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedEvalParams {
    params: SupernetEvalParams,
    training: HeadTraining,
    head: ExitHead,
}

impl CheckedEvalParams {
    /// The parameters.
    pub fn params(&self) -> &SupernetEvalParams {
        &self.params
    }

    /// The exit head every backbone gets.
    pub fn head(&self) -> &ExitHead {
        &self.head
    }
}

impl SupernetEvalParams {
    /// Validates every field for a classifier of `num_classes` classes.
    pub fn check(self, num_classes: usize) -> Result<CheckedEvalParams> {
        for (name, v) in [
            ("calibration_batches", self.calibration_batches),
            ("batch_size", self.batch_size),
            ("head_width", self.head_width),
            ("head_epochs", self.head_epochs),
            ("head_train_images", self.head_train_images),
        ] {
            if v == 0 {
                return Err(SupernetError::invalid(name, "must be at least 1"));
            }
        }
        let exits = |e: dynas_exits::ExitError| SupernetError::invalid("exit heads", e.to_string());
        let training = HeadTraining::new(
            self.head_epochs,
            128,
            self.head_learning_rate,
            self.distill_temperature,
            self.distill_weight,
            self.seed,
        )
        .map_err(exits)?;
        let head = ExitHead::new(self.head_width, Activation::Relu, num_classes).map_err(exits)?;
        Ok(CheckedEvalParams {
            params: self,
            training,
            head,
        })
    }
}

/// The data the worker evaluates on: training images (batch-norm recalibration and head
/// training), the validation split (accuracies and exit tables) and optionally the test split
/// (final reports only).
pub struct SupernetData {
    /// Training split.
    pub train: Dataset,
    /// Validation split, held out of training.
    pub validation: Dataset,
    /// Test split, used only by [`SupernetWorker::test_outcome`].
    pub test: Option<Dataset>,
    /// Input normalisation (the training split's statistics).
    pub norm: Normalization,
}

/// What a deployed configuration achieves on the test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    /// Top-1 (%) with the exits and thresholds.
    pub top1: f64,
    /// Top-1 (%) of the final classifier alone.
    pub final_top1: f64,
    /// Statistics of the exit selection (rates per exit and at the final classifier).
    pub statistics: ExitStatistics,
    /// Test images.
    pub samples: usize,
}

/// Builds the supernet on the worker thread (tensors never cross threads).
pub type SupernetFactory = Box<dyn FnOnce() -> Result<Supernet> + Send>;

enum Request {
    Accuracy(Genotype, Sender<Result<f64>>),
    Exits(Genotype, Sender<Result<ExitTable>>),
    Test(Genotype, Vec<DeployedExit>, Sender<Result<TestOutcome>>),
    Export(
        Vec<(Genotype, bool)>,
        std::path::PathBuf,
        Sender<Result<()>>,
    ),
}

/// The thread that owns a supernet and serves accuracy, exit-table and test requests.
pub struct SupernetWorker {
    requests: Mutex<Option<Sender<Request>>>,
    handle: Option<JoinHandle<()>>,
    fingerprint: String,
    head: ExitHead,
    validation_samples: usize,
}

impl SupernetWorker {
    /// Starts the worker: `factory` builds (e.g. loads) the supernet on the worker thread.
    /// `fingerprint` names the supernet and data in checkpoints (e.g. the weights file and its
    /// size).
    pub fn spawn(
        factory: SupernetFactory,
        data: SupernetData,
        params: CheckedEvalParams,
        fingerprint: impl Into<String>,
    ) -> Result<Self> {
        let head = *params.head();
        let validation_samples = data.validation.len();
        let (tx, rx) = channel::<Request>();
        let (ready_tx, ready_rx) = channel::<Result<()>>();
        let handle = std::thread::Builder::new()
            .name("dynas-supernet-worker".into())
            .spawn(
                move || match factory().and_then(|s| State::new(s, data, params)) {
                    Ok(mut state) => {
                        let _ = ready_tx.send(Ok(()));
                        state.serve(rx);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                },
            )
            .map_err(|e| SupernetError::invalid("worker", format!("cannot start: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| SupernetError::invalid("worker", "stopped while starting"))??;
        Ok(Self {
            requests: Mutex::new(Some(tx)),
            handle: Some(handle),
            fingerprint: fingerprint.into(),
            head,
            validation_samples,
        })
    }

    /// The exit head attached at every admissible block.
    pub fn head(&self) -> ExitHead {
        self.head
    }

    /// Images in the validation split.
    pub fn validation_samples(&self) -> usize {
        self.validation_samples
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<Result<T>>) -> Request) -> Result<T> {
        let (tx, rx) = channel();
        {
            let guard = self
                .requests
                .lock()
                .map_err(|_| SupernetError::invalid("worker", "request queue poisoned"))?;
            let sender = guard
                .as_ref()
                .ok_or_else(|| SupernetError::invalid("worker", "already stopped"))?;
            sender
                .send(make(tx))
                .map_err(|_| SupernetError::invalid("worker", "the worker thread has stopped"))?;
        }
        rx.recv()
            .map_err(|_| SupernetError::invalid("worker", "the worker thread has stopped"))?
    }

    /// Validation top-1 (%) of `genotype` after batch-norm recalibration.
    pub fn accuracy(&self, genotype: &Genotype) -> Result<f64> {
        self.ask(|tx| Request::Accuracy(genotype.clone(), tx))
    }

    /// The validation exit table of `genotype` with heads after every admissible block.
    pub fn exit_table(&self, genotype: &Genotype) -> Result<ExitTable> {
        self.ask(|tx| Request::Exits(genotype.clone(), tx))
    }

    /// `genotype` with `exits` (thresholds as deployed) on the test split.
    pub fn test_outcome(&self, genotype: &Genotype, exits: &[DeployedExit]) -> Result<TestOutcome> {
        self.ask(|tx| Request::Test(genotype.clone(), exits.to_vec(), tx))
    }

    /// Writes what the runtime needs to execute `deployment` into the bundle folder `dir`
    /// (see [`dynas_supernet::bundle`]): the batch-norm statistics of every deployed backbone and the
    /// exit heads of every backbone deployed with exits (the heads the search calibrated).
    pub fn export_bundle(
        &self,
        deployment: &dynas_search::Deployment,
        dir: &std::path::Path,
    ) -> Result<()> {
        let mut backbones: Vec<(Genotype, bool)> = Vec::new();
        for p in &deployment.points {
            match backbones.iter_mut().find(|(g, _)| *g == p.genotype) {
                Some(entry) => entry.1 |= !p.exits.is_empty(),
                None => backbones.push((p.genotype.clone(), !p.exits.is_empty())),
            }
        }
        self.ask(|tx| Request::Export(backbones, dir.to_path_buf(), tx))
    }

    /// The fingerprint given at [`SupernetWorker::spawn`].
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl Drop for SupernetWorker {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.requests.lock() {
            guard.take();
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A backbone whose heads are trained.
struct WithExits {
    subnet: Subnet,
    heads: ExitHeads,
    positions: Vec<ExitPosition>,
    table: ExitTable,
}

/// The worker thread's state.
struct State {
    supernet: Supernet,
    data: SupernetData,
    params: CheckedEvalParams,
    bn: BnStore,
    accuracy: HashMap<Genotype, f64>,
    exits: HashMap<Genotype, WithExits>,
    validation: (Tensor, Tensor),
    head_train: (Tensor, Tensor),
    /// The test split as one batch, built on the first test request and kept.
    test_split: Option<(Tensor, Tensor)>,
}

fn whole(data: &Dataset, indices: &[usize], norm: &Normalization) -> (Tensor, Tensor) {
    let b = data.batch(
        indices,
        norm,
        &Augmentation::NONE,
        &mut seeded_rng(0),
        Device::Cpu,
    );
    (b.images, b.labels)
}

impl State {
    fn new(supernet: Supernet, data: SupernetData, params: CheckedEvalParams) -> Result<Self> {
        if data.validation.is_empty() {
            return Err(SupernetError::invalid("validation split", "is empty"));
        }
        let val_idx: Vec<usize> = (0..data.validation.len()).collect();
        let validation = whole(&data.validation, &val_idx, &data.norm);
        let n_train = params.params.head_train_images.min(data.train.len());
        if n_train == 0 {
            return Err(SupernetError::invalid("training split", "is empty"));
        }
        let train_idx: Vec<usize> = (0..n_train).collect();
        let head_train = whole(&data.train, &train_idx, &data.norm);
        Ok(Self {
            supernet,
            data,
            params,
            bn: BnStore::new(),
            accuracy: HashMap::new(),
            exits: HashMap::new(),
            validation,
            head_train,
            test_split: None,
        })
    }

    fn serve(&mut self, rx: Receiver<Request>) {
        while let Ok(request) = rx.recv() {
            match request {
                Request::Accuracy(g, tx) => {
                    let _ = tx.send(self.accuracy(&g));
                }
                Request::Exits(g, tx) => {
                    let _ = tx.send(self.with_exits(&g).map(|w| w.table.clone()));
                }
                Request::Test(g, exits, tx) => {
                    let _ = tx.send(self.test(&g, &exits));
                }
                Request::Export(backbones, dir, tx) => {
                    let _ = tx.send(self.export(&backbones, &dir));
                }
            }
        }
    }

    /// Recalibrates batch norm for `genotype` the first time, switches to its stored
    /// statistics afterwards.
    fn activate(&mut self, genotype: &Genotype) -> Result<Network> {
        let net = self.supernet.network(genotype)?;
        if !self.bn.activate(&self.supernet, genotype)? {
            let p = &self.params.params;
            let mut rng = seeded_rng(p.seed);
            let batches = self
                .data
                .train
                .batches(
                    p.batch_size,
                    true,
                    &self.data.norm,
                    Augmentation::NONE,
                    &mut rng,
                    self.supernet.device(),
                )
                .take(p.calibration_batches);
            self.supernet.recalibrate_bn(&net, batches)?;
            self.bn.capture(&self.supernet, genotype)?;
        }
        Ok(net)
    }

    fn accuracy(&mut self, genotype: &Genotype) -> Result<f64> {
        if let Some(&a) = self.accuracy.get(genotype) {
            return Ok(a);
        }
        let net = self.activate(genotype)?;
        let acc = 100.0
            * evaluate(
                &self.supernet,
                &net,
                &self.data.validation,
                &self.data.norm,
                self.params.params.batch_size,
            )?;
        self.accuracy.insert(genotype.clone(), acc);
        Ok(acc)
    }

    fn with_exits(&mut self, genotype: &Genotype) -> Result<&WithExits> {
        if !self.exits.contains_key(genotype) {
            let net = self.activate(genotype)?;
            let subnet = self.supernet.extract(&net)?;
            let blocks = dynas_exits::Backbone::num_blocks(&subnet);
            // Every block but the stem and the last feature block, whose head would cost about
            // as much as the classifier it replaces.
            let head_blocks: Vec<usize> = (1..blocks.saturating_sub(1)).collect();
            if head_blocks.is_empty() {
                return Err(SupernetError::invalid(
                    "exit positions",
                    format!("subnet {genotype} has {blocks} blocks: no admissible exit"),
                ));
            }
            let exits_err = |e: dynas_exits::ExitError| {
                SupernetError::invalid("exit heads", format!("{genotype}: {e}"))
            };
            // Head initialisation draws from libtorch's process-wide generator: seed it per
            // backbone, so a backbone's heads do not depend on which requests came before
            // (other threads drawing at the same time, e.g. a second worker, still interleave).
            // libtorch takes a signed seed: keep it non-negative.
            let seed = crate::search::backbone_seed(self.params.training.seed(), genotype);
            tch::manual_seed((seed >> 1) as i64);
            let mut heads =
                ExitHeads::new(&subnet, head_blocks.clone(), self.params.head, Device::Cpu)
                    .map_err(exits_err)?;
            heads
                .train(
                    &subnet,
                    &self.head_train.0,
                    &self.head_train.1,
                    &self.params.training,
                )
                .map_err(exits_err)?;
            let positions: Vec<ExitPosition> = head_blocks
                .iter()
                .map(|&b| ExitPosition::new(net.layers[b].name.clone(), b))
                .collect();
            let outputs = heads
                .outputs(&subnet, &self.validation.0, &self.validation.1, 500)
                .map_err(exits_err)?;
            let table =
                ExitTable::from_outputs(positions.clone(), &outputs, None).map_err(exits_err)?;
            self.exits.insert(
                genotype.clone(),
                WithExits {
                    subnet,
                    heads,
                    positions,
                    table,
                },
            );
        }
        self.exits
            .get(genotype)
            .ok_or_else(|| SupernetError::invalid("exit cache", "entry vanished"))
    }

    fn export(&mut self, backbones: &[(Genotype, bool)], dir: &std::path::Path) -> Result<()> {
        let heads_dir = dynas_supernet::bundle::exit_heads_dir(dir);
        if backbones.iter().any(|(_, exits)| *exits) {
            std::fs::create_dir_all(&heads_dir).map_err(|e| SupernetError::io(&heads_dir, e))?;
        }
        let mut store = BnStore::new();
        for (genotype, with_exits) in backbones {
            self.activate(genotype)?;
            store.capture(&self.supernet, genotype)?;
            if *with_exits {
                let entry = self.with_exits(genotype)?;
                let path = dynas_supernet::bundle::exit_heads_path(dir, genotype);
                dynas_search::write_atomically_with(&path, |tmp| {
                    entry.heads.save(tmp, None).map_err(std::io::Error::other)
                })?;
                let layout = dynas_supernet::bundle::HeadLayout {
                    head: *entry.heads.spec(),
                    blocks: entry.heads.blocks().to_vec(),
                };
                layout.write(dir, genotype)?;
            }
        }
        store.save(dynas_supernet::bundle::bn_store_path(dir))
    }

    fn test(&mut self, genotype: &Genotype, deployed: &[DeployedExit]) -> Result<TestOutcome> {
        if self.test_split.is_none() {
            let test = self.data.test.as_ref().ok_or_else(|| {
                SupernetError::invalid("test split", "the worker was started without one")
            })?;
            let idx: Vec<usize> = (0..test.len()).collect();
            self.test_split = Some(whole(test, &idx, &self.data.norm));
        }
        let (x, y) = self
            .test_split
            .as_ref()
            .map(|(x, y)| (x.shallow_clone(), y.shallow_clone()))
            .ok_or_else(|| SupernetError::invalid("test split", "not built"))?;
        let entry = self.with_exits(genotype)?;
        let mut exits = Vec::with_capacity(deployed.len());
        let mut thresholds = Vec::with_capacity(deployed.len());
        for d in deployed {
            let i = entry
                .positions
                .iter()
                .position(|p| p.after_layer == d.after_layer.index())
                .ok_or_else(|| {
                    SupernetError::invalid(
                        "deployed exit",
                        format!("{genotype} has no exit head after layer {}", d.after_layer),
                    )
                })?;
            exits.push(i);
            thresholds.push(d.threshold);
        }
        let exits_err = |e: dynas_exits::ExitError| {
            SupernetError::invalid("test evaluation", format!("{genotype}: {e}"))
        };
        let outputs = entry
            .heads
            .outputs(&entry.subnet, &x, &y, 500)
            .map_err(exits_err)?;
        let table =
            ExitTable::from_outputs(entry.positions.clone(), &outputs, None).map_err(exits_err)?;
        let selection =
            ExitSelection::new(exits, ExitRule::MaxSoftmax(thresholds)).map_err(exits_err)?;
        let statistics = table.evaluate(&selection).map_err(exits_err)?;
        Ok(TestOutcome {
            top1: 100.0 * statistics.accuracy,
            final_top1: 100.0 * table.final_accuracy(),
            statistics,
            samples: table.samples(),
        })
    }
}

fn search_error(genotype: &Genotype, e: SupernetError) -> SearchError {
    SearchError::Evaluation {
        genotype: genotype.to_string(),
        reason: e.to_string(),
    }
}

/// The supernet's validation accuracy as the search's [`AccuracySource`].
pub struct SupernetAccuracy<'w> {
    worker: &'w SupernetWorker,
}

impl<'w> SupernetAccuracy<'w> {
    /// A handle to `worker`.
    pub fn new(worker: &'w SupernetWorker) -> Self {
        Self { worker }
    }
}

impl AccuracySource for SupernetAccuracy<'_> {
    fn name(&self) -> &str {
        "supernet-validation"
    }

    fn accuracy(&self, genotype: &Genotype, _network: &Network) -> dynas_search::Result<f64> {
        self.worker
            .accuracy(genotype)
            .map_err(|e| search_error(genotype, e))
    }

    fn fingerprint(&self) -> Option<String> {
        Some(self.worker.fingerprint().to_string())
    }
}

/// The supernet's trained exit heads as HADAS's [`ExitSource`].
pub struct SupernetExits<'w> {
    worker: &'w SupernetWorker,
}

impl<'w> SupernetExits<'w> {
    /// A handle to `worker`.
    pub fn new(worker: &'w SupernetWorker) -> Self {
        Self { worker }
    }
}

impl ExitSource for SupernetExits<'_> {
    fn exit_table(
        &self,
        backbone: &Genotype,
        _network: &Network,
    ) -> dynas_search::Result<ExitTable> {
        self.worker
            .exit_table(backbone)
            .map_err(|e| search_error(backbone, e))
    }
}
