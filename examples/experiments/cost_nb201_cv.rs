//! Choosing `ArchPredictor` settings without touching the test rows: 5-fold cross-validation
//! *within* the N = 1,000 training cells of the seeded split used by `cost_nb201_accuracy`
//! (the other 14,625 cells are only scored after the choice, for the record).
//!
//! ```text
//! cargo run --release -p dynas-cost --example cost_nb201_cv -- [CSV] [SEED]
//! ```
//! Prints, per target and candidate learner, the mean cross-validated share within ±10 % and
//! Spearman, then the same on the held-out cells. `QUICK=1` runs the default learner only.

use clap::Parser;
use dynas_cost::gbdt::GbdtParams;
use dynas_cost::predictor::{ArchEncoding, ArchPredictor, Learner, RegressionMetrics, TargetScale};
use dynas_cost::table::read_arch_targets;
use rand::seq::SliceRandom;

#[path = "common/nb201_table.rs"]
mod nb201_table;

/// Chooses `ArchPredictor` settings by cross-validation inside the training cells.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    table: nb201_table::TableAndSeed,
}

/// Fits on `train` and scores on `test` (indices into the table).
fn score(
    genes: &[Vec<usize>],
    y: &[f64],
    train: &[usize],
    test: &[usize],
    learner: Learner,
) -> Result<RegressionMetrics, Box<dyn std::error::Error>> {
    let pick_g =
        |idx: &[usize]| -> Vec<Vec<usize>> { idx.iter().map(|&i| genes[i].clone()).collect() };
    let pick_y = |idx: &[usize]| -> Vec<f64> { idx.iter().map(|&i| y[i]).collect() };
    let model = ArchPredictor::fit(
        ArchEncoding::Nb201,
        &pick_g(train),
        &pick_y(train),
        learner,
        TargetScale::Linear,
    )?;
    let pred: Vec<f64> = pick_g(test)
        .iter()
        .map(|g| model.predict(g))
        .collect::<Result<_, _>>()?;
    Ok(RegressionMetrics::compute(&pick_y(test), &pred)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (csv, seed) = (args.table.csv(), args.table.seed);
    let base = match Learner::default() {
        Learner::RidgeThenGbdt { gbdt, .. } => gbdt,
        _ => GbdtParams::default(),
    };
    let mut candidates: Vec<(String, Learner)> =
        vec![("default (300/4/0.05/5)".into(), Learner::default())];
    if std::env::var("QUICK").is_err() {
        for (n_trees, max_depth, learning_rate, min_samples_leaf) in [
            (600, 4, 0.05, 5),
            (300, 3, 0.05, 5),
            (600, 3, 0.05, 5),
            (300, 5, 0.05, 5),
            (1000, 3, 0.03, 5),
            (300, 4, 0.05, 10),
        ] {
            candidates.push((
                format!("{n_trees}/{max_depth}/{learning_rate}/{min_samples_leaf}"),
                Learner::RidgeThenGbdt {
                    lambda: 1e-3,
                    gbdt: GbdtParams {
                        n_trees,
                        max_depth,
                        learning_rate,
                        min_samples_leaf,
                        ..base
                    },
                },
            ));
        }
    }
    println!(
        "| target | trees/depth/shrinkage/min leaf | CV within 10 % | CV Spearman | test within 10 % | test Spearman |"
    );
    println!("|---|---|---|---|---|---|");
    for col in ["raspi4_latency", "pixel3_latency"] {
        let data = read_arch_targets(csv, col)?;
        let genes: Vec<Vec<usize>> = data.cells.iter().map(|c| c.ops().to_vec()).collect();
        let mut order: Vec<usize> = (0..data.cells.len()).collect();
        order.shuffle(&mut dynas_space::seeded_rng(seed));
        let (train, test) = order.split_at(1000.min(order.len() - 1));
        let folds = 5;
        let fold_len = train.len() / folds;
        for (name, learner) in &candidates {
            let (mut w10, mut sp) = (0.0, Some(0.0));
            for k in 0..folds {
                let valid = &train[k * fold_len..(k + 1) * fold_len];
                let fit: Vec<usize> = train[..k * fold_len]
                    .iter()
                    .chain(&train[(k + 1) * fold_len..])
                    .copied()
                    .collect();
                let m = score(&genes, &data.targets, &fit, valid, learner.with_seed(seed))?;
                w10 += m.within_10 / folds as f64;
                // The mean is undefined when any fold's correlation is.
                sp = sp.zip(m.spearman).map(|(a, b)| a + b / folds as f64);
            }
            let m = score(&genes, &data.targets, train, test, learner.with_seed(seed))?;
            println!(
                "| {col} | {name} | {:.1} % | {} | {:.1} % | {} |",
                100.0 * w10,
                spearman(sp),
                100.0 * m.within_10,
                spearman(m.spearman)
            );
        }
    }
    Ok(())
}

/// A Spearman correlation for the table (`undefined` when a side is constant).
fn spearman(s: Option<f64>) -> String {
    s.map_or("undefined".to_string(), |s| format!("{s:.4}"))
}
