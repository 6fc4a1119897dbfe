//! HADAS's exit + DVFS stage on HADAS's *published* per-exit accuracies of AttentiveNAS a0..a5
//! (CIFAR-100), priced on the Jetson AGX Xavier, next to the paper's energy figures.
//!
//! What comes from where:
//! * **Backbones** (published): the AttentiveNAS a0..a5 configurations (resolution, widths,
//!   depths, kernels, expand ratios of `configs/eval_attentive_nas_models.yml` in
//!   facebookresearch/AttentiveNAS), decoded by `MbConvSpace::attentive_nas()` with 100 classes.
//! * **Exit positions** (HADAS's code): exits after blocks 5..B-1 (0-based, of B MBConv blocks;
//!   `pos_exits` in HADAS's `eex_dvfs_search_space.py`, `block_ee` in `train_exit_blocks.py`).
//!   The files hold one row per exit and, last, the final classifier (B - 4 rows for every
//!   model), so the last row is used as the final classifier's accuracy.
//! * **Exit head** (HADAS's `ExitBlock`): global average pooling, a linear classifier and a
//!   linear confidence, priced by the cost model like the backbone.
//! * **Per-sample confidences** (*modelled*): only per-exit top-1 is published, so the table is
//!   synthesised by `SyntheticConfidence::default()` (10,000 virtual samples, calibrated and
//!   nested confidences: an optimistic model of real exits). Thresholds are calibrated on the
//!   even samples for at most [`MAX_DROP_POINTS`] below the final classifier; accuracy and expected
//!   cost (exit-rate-weighted) are reported on the odd samples.
//! * **Cost** (*modelled*): `DvfsLutModel::jetson_agx_xavier`: per-layer latency and energy at
//!   the highest clocks from the measured Xavier OFA-MNIST table where a layer has a key, else
//!   from the regression fitted on that table (every AttentiveNAS layer here: 192-256 px
//!   inputs); clock scaling from `BoardDvfsLaws` fitted on the measured Jetson TX2 sweeps
//!   (latency soft roofline, rail powers), CPU term from the regression's intercept. Absolute
//!   millijoules are model output, not measurements; the ratios are what to compare.
//!
//! Stages, per backbone: static at the highest clocks; with exits (all exits offered to the
//! calibration at the highest clocks); exits + DVFS by (a) screening all 3,654 operating points
//! with the exits calibrated at the highest clocks, then recalibrating at the best
//! [`RECALIBRATED`] points, and (b) HADAS's inner search (`InnerProblem`: one bit per exit,
//! CPU / GPU / memory clock genes) with NSGA-II. Every configuration meets the accuracy budget
//! on the calibration half by construction, so the best is the lowest-energy one; its held-out
//! accuracy is reported as it is (it can miss the budget by sampling noise). For comparison,
//! HADAS's own accounting of the same exits (the unweighted mean over the exits that fire and
//! the final classifier, `ExitTable::hadas_mean`) is printed too.
//!
//! ```text
//! cargo run --release -p dynas-hadas --example hadas_published_exits -- \
//!     [DATA_DIR] [GENERATIONS (20)] [MAX_DROP_POINTS (0.5)] [CALIBRATION_GRID (32)]
//! ```

use clap::Parser;
use dynas_cost::{Cost, CostModel, CostSource, DeviceProfile, DvfsLutModel, OperatingPoint};
use dynas_exits::{
    ConfidenceMeasure, ExitCosts, ExitPosition, ExitRule, ExitSelection, ExitTable, ExpectedCost,
    HadasExitData, PositionCost, SyntheticConfidence, ThresholdCalibration,
};
use dynas_hadas::{DynamicEvaluator, DynamicMetrics, InnerProblem};
use dynas_search::{Budget, Executor, Nsga2, Nsga2Config, SearchError};
use dynas_space::{
    BlockChoice, Genotype, Layer, MbConvSpace, MbConvSubnet, Network, SearchSpace, StageChoice,
    TensorShape,
};
use serde::Deserialize;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Default accuracy budget, in points below the final classifier.
const MAX_DROP_POINTS: f64 = 0.5;
/// First block (0-based) with an exit, as in HADAS's code.
const FIRST_EXIT_BLOCK: usize = 5;
/// Operating points recalibrated after screening.
const RECALIBRATED: usize = 8;
/// CIFAR-100.
const CLASSES: usize = 100;

/// One published AttentiveNAS configuration.
#[derive(Deserialize)]
struct Published {
    name: String,
    resolution: usize,
    /// First conv, mb1..mb7, feature mix.
    widths: [usize; 9],
    kernels: [usize; 7],
    expand_ratios: [usize; 7],
    depths: [usize; 7],
}

/// `configs/eval_attentive_nas_models.yml` of facebookresearch/AttentiveNAS, kept as data.
const MODELS_TOML: &str = include_str!("data/attentive_nas_models.toml");

/// The published models, in file order.
fn published_models() -> BoxResult<Vec<Published>> {
    #[derive(Deserialize)]
    struct Models {
        model: Vec<Published>,
    }
    let models: Models = toml::from_str(MODELS_TOML)
        .map_err(|e| format!("examples/experiments/data/attentive_nas_models.toml: {e}"))?;
    Ok(models.model)
}

/// HADAS's energy per inference (mJ, CIFAR-100, Jetson AGX Xavier): static, with exits,
/// exits + DVFS (`crates/dynas-data/data/README.md`).
const PAPER: [(&str, [f64; 3]); 4] = [
    ("a0", [173.8, 119.8, 116.1]),
    ("a6", [335.5, 256.8, 218.3]),
    ("b1", [212.4, 119.8, 93.8]),
    ("b2", [341.3, 187.9, 126.1]),
];

impl Published {
    fn subnet(&self) -> MbConvSubnet {
        MbConvSubnet {
            resolution: self.resolution,
            first_conv_width: self.widths[0],
            stages: (0..7)
                .map(|s| StageChoice {
                    width: self.widths[s + 1],
                    depth: self.depths[s],
                    blocks: vec![
                        BlockChoice {
                            kernel: self.kernels[s],
                            expand_ratio: self.expand_ratios[s],
                        };
                        self.depths[s]
                    ],
                })
                .collect(),
            // AttentiveNAS's v3 head: final expand 6x the last stage's width.
            final_expand_width: Some(6 * self.widths[7]),
            feature_mix_width: Some(self.widths[8]),
        }
    }
}

/// HADAS's `ExitBlock` on a feature map of shape `input`: pooling, classifier, confidence.
fn hadas_exit_head(input: TensorShape) -> Network {
    let pool = Layer::global_avg_pool("exit.pool", input);
    let features = pool.output().channels;
    Network::new(
        input,
        vec![
            pool,
            Layer::linear("exit.classifier", features, CLASSES),
            Layer::linear("exit.confidence", features, 1),
        ],
    )
}

fn expected(cost: Cost, macs: u64) -> ExpectedCost {
    ExpectedCost {
        latency_ms: cost.latency_ms,
        energy_mj: cost.energy_mj,
        macs: macs as f64,
    }
}

/// Prefix and head costs of every exit position at `point`.
fn exit_costs(
    network: &Network,
    positions: &[ExitPosition],
    model: &dyn CostModel,
    point: &OperatingPoint,
) -> dynas_search::Result<ExitCosts> {
    let breakdown = model.breakdown(network, point)?;
    let sums = breakdown.prefix_sums();
    let mut macs = 0u64;
    let prefix_macs: Vec<u64> = network
        .layers
        .iter()
        .map(|l| {
            macs += l.macs();
            macs
        })
        .collect();
    let mut out = Vec::with_capacity(positions.len());
    for p in positions {
        let head = hadas_exit_head(network.layers[p.after_layer].output());
        let head_cost = model.breakdown(&head, point)?.total;
        out.push(PositionCost {
            position: p.clone(),
            prefix: expected(sums[p.after_layer], prefix_macs[p.after_layer]),
            head: expected(head_cost, head.macs()),
        });
    }
    Ok(ExitCosts::from_parts(
        out,
        expected(breakdown.total, network.macs()),
    )?)
}

/// One backbone with its synthesised exit table, split for calibration and held-out evaluation.
struct Backbone {
    genotype: Genotype,
    network: Network,
    positions: Vec<ExitPosition>,
    calibration: ExitTable,
    held_out: ExitTable,
}

impl Backbone {
    fn new(space: &MbConvSpace, published: &Published, data: &HadasExitData) -> BoxResult<Self> {
        let genotype = space.genotype(&published.subnet())?;
        let network = space.decode(&genotype)?;
        let blocks: Vec<usize> = network
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.name.contains(".block"))
            .map(|(i, _)| i)
            .collect();
        let exits = blocks.len().saturating_sub(FIRST_EXIT_BLOCK);
        if exits == 0 || data.rows.len() != exits + 1 {
            return Err(format!(
                "{}: {} rows in `{}`, expected {exits} exits (blocks {FIRST_EXIT_BLOCK}..{}) + the final classifier",
                published.name,
                data.rows.len(),
                data.path.display(),
                blocks.len(),
            )
            .into());
        }
        let positions: Vec<ExitPosition> = data.rows[..exits]
            .iter()
            .zip(&blocks[FIRST_EXIT_BLOCK..])
            .map(|(r, &layer)| ExitPosition::new(r.name.clone(), layer))
            .collect();
        let top1 = data.top1();
        let table = ExitTable::synthesize(
            positions.clone(),
            &top1[..exits],
            top1[exits],
            &SyntheticConfidence::default(),
        )?;
        let (calibration, held_out) = table.split_alternate()?;
        Ok(Self {
            genotype,
            network,
            positions,
            calibration,
            held_out,
        })
    }
}

/// What an exit subset achieves at one operating point, on the held-out half.
struct Assessment {
    metrics: DynamicMetrics,
    accuracy: f64,
    active_exits: usize,
}

/// HADAS's inner evaluator for one backbone with HADAS's exit head: thresholds calibrated per
/// exit subset and operating point on the even samples, metrics on the odd ones (as
/// `dynas_hadas::ExitsEvaluator` does, whose head type has a conv HADAS's head lacks).
struct PublishedExits<'a> {
    backbone: &'a Backbone,
    model: &'a DvfsLutModel,
    calibration: ThresholdCalibration,
}

impl PublishedExits<'_> {
    fn assess(&self, exits: &[usize], point: &OperatingPoint) -> dynas_search::Result<Assessment> {
        let b = self.backbone;
        let costs = exit_costs(&b.network, &b.positions, self.model, point)?;
        let selection = if exits.is_empty() {
            ExitSelection::new(Vec::new(), ExitRule::MaxSoftmax(Vec::new()))?
        } else {
            b.calibration
                .calibrate(exits, &self.calibration, Some(&costs))?
                .selection
        };
        self.held_out(&selection, &costs)
    }

    fn held_out(
        &self,
        selection: &ExitSelection,
        costs: &ExitCosts,
    ) -> dynas_search::Result<Assessment> {
        let stats = self.backbone.held_out.evaluate(selection)?;
        let cost = stats.expected_cost(costs)?;
        let energy_mj = cost.energy_mj.ok_or_else(|| SearchError::Evaluation {
            genotype: self.backbone.genotype.to_string(),
            reason: "the cost model reports no energy".to_string(),
        })?;
        Ok(Assessment {
            metrics: DynamicMetrics {
                error: 100.0 * (1.0 - stats.accuracy),
                latency_ms: cost.latency_ms,
                energy_mj,
            },
            accuracy: stats.accuracy,
            active_exits: stats.active.iter().filter(|a| **a).count(),
        })
    }
}

impl DynamicEvaluator for PublishedExits<'_> {
    fn exit_positions(&self, _: &Genotype) -> dynas_search::Result<usize> {
        Ok(self.backbone.positions.len())
    }
    fn device(&self) -> &DeviceProfile {
        self.model.device()
    }
    fn evaluate(
        &self,
        backbone: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> dynas_search::Result<DynamicMetrics> {
        if *backbone != self.backbone.genotype {
            return Err(SearchError::invalid(
                "backbone",
                "this evaluator knows one backbone only",
            ));
        }
        Ok(self.assess(exits, point)?.metrics)
    }
}

/// A stage's figures.
#[derive(Clone, Copy)]
struct Stage {
    energy_mj: f64,
    latency_ms: f64,
    accuracy: f64,
}

impl Stage {
    fn from(a: &Assessment) -> Self {
        Self {
            energy_mj: a.metrics.energy_mj,
            latency_ms: a.metrics.latency_ms,
            accuracy: a.accuracy,
        }
    }
}

struct Row {
    name: String,
    macs: f64,
    exits: usize,
    static_max: Stage,
    static_dvfs: Stage,
    exits_max: Stage,
    active_exits: usize,
    exits_dvfs: Stage,
    exits_dvfs_point: OperatingPoint,
    exits_dvfs_same_latency: Stage,
    unweighted_mean: Stage,
    fired: Vec<String>,
    nsga2: Option<(Stage, usize)>,
}

fn run_backbone(
    published: &Published,
    backbone: &Backbone,
    model: &DvfsLutModel,
    generations: usize,
    calibration: ThresholdCalibration,
) -> BoxResult<Row> {
    let evaluator = PublishedExits {
        backbone,
        model,
        calibration,
    };
    let max = model.device().max_operating_point();
    let all: Vec<usize> = (0..backbone.positions.len()).collect();
    let static_max = evaluator.assess(&[], &max)?;
    let costs_max = exit_costs(&backbone.network, &backbone.positions, model, &max)?;
    let calibrated = backbone
        .calibration
        .calibrate(&all, &calibration, Some(&costs_max))?;
    let exits_max = evaluator.held_out(&calibrated.selection, &costs_max)?;
    // HADAS's own figure for the same exits: the unweighted mean over them and the final
    // classifier, whatever their exit rates.
    let fired: Vec<usize> = calibrated
        .statistics
        .exits
        .iter()
        .zip(&calibrated.statistics.active)
        .filter(|(_, on)| **on)
        .map(|(&e, _)| e)
        .collect();
    let (mean_accuracy, mean_cost) = backbone.held_out.hadas_mean(&fired, &costs_max)?;
    let unweighted_mean = Stage {
        energy_mj: mean_cost.energy_mj.unwrap_or(f64::NAN),
        latency_ms: mean_cost.latency_ms,
        accuracy: mean_accuracy,
    };

    // Screening: every operating point with the thresholds calibrated at the highest clocks.
    let mut screened: Vec<(f64, OperatingPoint)> = Vec::new();
    let mut static_dvfs = Stage::from(&static_max);
    let mut same_latency = Stage::from(&exits_max);
    for point in model.operating_points() {
        let costs = exit_costs(&backbone.network, &backbone.positions, model, &point)?;
        let full = costs.full();
        if let Some(e) = full.energy_mj
            && e < static_dvfs.energy_mj
        {
            static_dvfs = Stage {
                energy_mj: e,
                latency_ms: full.latency_ms,
                accuracy: static_max.accuracy,
            };
        }
        let a = evaluator.held_out(&calibrated.selection, &costs)?;
        if a.metrics.latency_ms <= static_max.metrics.latency_ms
            && a.metrics.energy_mj < same_latency.energy_mj
        {
            same_latency = Stage::from(&a);
        }
        screened.push((a.metrics.energy_mj, point));
    }
    screened.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Recalibrate at the best screened points (and the highest clocks) and keep the best.
    // Every calibrated configuration meets the budget on the calibration half by construction.
    let mut best = (Stage::from(&exits_max), max);
    for (_, point) in screened.iter().take(RECALIBRATED) {
        let a = evaluator.assess(&all, point)?;
        if a.metrics.energy_mj < best.0.energy_mj {
            best = (Stage::from(&a), point.clone());
        }
        // The screened thresholds at this point count too.
        let costs = exit_costs(&backbone.network, &backbone.positions, model, point)?;
        let fixed = evaluator.held_out(&calibrated.selection, &costs)?;
        if fixed.metrics.energy_mj < best.0.energy_mj {
            best = (Stage::from(&fixed), point.clone());
        }
    }

    // HADAS's inner search: exit bits and clock genes, NSGA-II.
    let nsga2 = if generations > 0 {
        let inner = InnerProblem::new(backbone.genotype.clone(), &evaluator)?;
        let result = Executor::new(
            &inner,
            Nsga2::new(Nsga2Config {
                population: 20,
                offspring: 20,
                ..Nsga2Config::default()
            })?,
            Budget::generations(generations)?,
        )
        .seed(0)
        .run()?;
        let mut found: Option<Stage> = None;
        for p in &result.front.points {
            let (error, latency_ms, energy_mj) = (p.values[0], p.values[1], p.values[2]);
            if found.is_none_or(|f| energy_mj < f.energy_mj) {
                found = Some(Stage {
                    energy_mj,
                    latency_ms,
                    accuracy: 1.0 - error / 100.0,
                });
            }
        }
        found.map(|s| (s, result.archive.len()))
    } else {
        None
    };

    Ok(Row {
        name: published.name.clone(),
        macs: backbone.network.macs() as f64 / 1e6,
        exits: backbone.positions.len(),
        static_max: Stage::from(&static_max),
        static_dvfs,
        exits_max: Stage::from(&exits_max),
        active_exits: exits_max.active_exits,
        exits_dvfs: best.0,
        exits_dvfs_point: best.1,
        exits_dvfs_same_latency: same_latency,
        unweighted_mean,
        fired: fired
            .iter()
            .map(|&e| backbone.positions[e].name.clone())
            .collect(),
        nsga2,
    })
}

/// HADAS's published exits of AttentiveNAS a0..a5 with exits and DVFS on a Jetson AGX Xavier.
#[derive(Parser)]
struct Args {
    /// The shared data folder.
    #[arg(default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data"))]
    data_dir: String,
    /// NSGA-II generations of the exits x clocks search.
    #[arg(default_value_t = 20)]
    generations: usize,
    /// Accuracy the exits may lose, in points below the final classifier.
    #[arg(value_name = "MAX_DROP_POINTS", default_value_t = MAX_DROP_POINTS)]
    max_drop: f64,
    /// Thresholds tried per exit when calibrating.
    #[arg(value_name = "CALIBRATION_GRID", default_value_t = 32)]
    grid: usize,
}

fn main() -> BoxResult<()> {
    let Args {
        data_dir,
        generations,
        max_drop,
        grid,
    } = Args::parse();
    let calibration =
        ThresholdCalibration::new(max_drop / 100.0, ConfidenceMeasure::MaxSoftmax, grid)?;
    let model = DvfsLutModel::jetson_agx_xavier(&data_dir)?;
    let space = MbConvSpace::attentive_nas().with_num_classes(CLASSES)?;
    println!(
        "cost: {} on {} ({} operating points); laws {}",
        model.name(),
        model.device().name,
        model.operating_points().len(),
        model.laws().source
    );
    println!(
        "exits: thresholds (grid {grid}) for at most {max_drop:.1} point below the final classifier, calibrated on the even samples, reported on the odd ones\n"
    );
    let mut rows = Vec::new();
    let models = published_models()?;
    for published in &models {
        let path = format!(
            "{data_dir}/exits/hadas-attentivenas-cifar100/{}_exit_accuracy.csv",
            published.name
        );
        let data = HadasExitData::from_csv(&path)?;
        let backbone = Backbone::new(&space, published, &data)?;
        let sources = model.sources(&backbone.network);
        let count = |s: CostSource| sources.iter().filter(|x| **x == s).count();
        let row = run_backbone(published, &backbone, &model, generations, calibration)?;
        println!(
            "{}: {} px, {:.1} M MACs, {} layers ({} from the measured table, {} from its regression, {} free), {} exits",
            row.name,
            published.resolution,
            row.macs,
            backbone.network.layers.len(),
            count(CostSource::Measured),
            count(CostSource::Regression),
            count(CostSource::Free),
            row.exits,
        );
        let line = |label: &str, s: &Stage| {
            println!(
                "  {label:<34} {:>8.2} mJ {:>8.3} ms  top-1 {:.2} %",
                s.energy_mj,
                s.latency_ms,
                100.0 * s.accuracy
            );
        };
        line("static, highest clocks", &row.static_max);
        line("static + DVFS (best point)", &row.static_dvfs);
        line(
            &format!("exits, highest clocks ({} fire)", row.active_exits),
            &row.exits_max,
        );
        println!("  {:<34} {}", "  firing", row.fired.join(" "));
        line("HADAS unweighted mean, same exits", &row.unweighted_mean);
        line(
            "exits + DVFS, latency <= static",
            &row.exits_dvfs_same_latency,
        );
        line("exits + DVFS (screened grid)", &row.exits_dvfs);
        println!("  {:<34} {}", "  at", row.exits_dvfs_point);
        match &row.nsga2 {
            Some((s, n)) => line(&format!("exits + DVFS (NSGA-II, {n} evals)"), s),
            None => println!("  exits + DVFS (NSGA-II): skipped or nothing within the budget"),
        }
        rows.push(row);
    }

    println!(
        "\n| model | static mJ | exits mJ | exits+DVFS mJ | exits / static | exits+DVFS / static | HADAS-mean exits / static | paper exits / static | paper exits+DVFS / static | top-1 static -> exits -> exits+DVFS (held-out) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let paper = PAPER.iter().find(|(n, _)| *n == r.name);
        let (pe, pd) = match paper {
            Some((_, [s, e, d])) => (format!("{:.3}", e / s), format!("{:.3}", d / s)),
            None => ("no figure".to_string(), "no figure".to_string()),
        };
        let best = match &r.nsga2 {
            Some((s, _)) if s.energy_mj < r.exits_dvfs.energy_mj => *s,
            _ => r.exits_dvfs,
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} | {pe} | {pd} | {:.2} -> {:.2} -> {:.2} |",
            r.name,
            r.static_max.energy_mj,
            r.exits_max.energy_mj,
            best.energy_mj,
            r.exits_max.energy_mj / r.static_max.energy_mj,
            best.energy_mj / r.static_max.energy_mj,
            r.unweighted_mean.energy_mj / r.static_max.energy_mj,
            100.0 * r.static_max.accuracy,
            100.0 * r.exits_max.accuracy,
            100.0 * best.accuracy,
        );
    }
    for (name, [s, e, d]) in PAPER
        .iter()
        .filter(|(n, _)| !models.iter().any(|m| m.name == *n))
    {
        println!(
            "| {name} (paper only, no per-exit data) | {s:.1} | {e:.1} | {d:.1} | | | | {:.3} | {:.3} | |",
            e / s,
            d / s
        );
    }
    Ok(())
}
