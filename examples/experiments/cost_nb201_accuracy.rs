//! NAS-Bench-201 latency-predictor accuracy: train on N random architectures, test on all the
//! others (15,625 - N).
//!
//! ```text
//! cargo run --release -p dynas-cost --example cost_nb201_accuracy -- [CSV] [SEED]
//! ```
//! Prints a Markdown table: per device column and training size, the share of held-out
//! predictions within ±1/10/20 %, RMSE and Spearman, for the default learner (ridge + boosted
//! trees on the NAS-Bench-201 path features, linear target scale) and, at N = 1000, two
//! one-hot baselines (boosted trees on log latency, and plain linear regression).
//! `SIZES=50,1000` restricts the training sizes; `COLUMNS=raspi4_latency,pixel3_latency` the
//! targets.

use clap::Parser;
use dynas_cost::predictor::{ArchEncoding, ArchPredictor, Learner, RegressionMetrics, TargetScale};
use dynas_cost::table::read_arch_targets;
use rand::seq::SliceRandom;

#[path = "common/nb201_table.rs"]
mod nb201_table;

/// NAS-Bench-201 latency-predictor accuracy on the held-out architectures.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    table: nb201_table::TableAndSeed,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (csv, seed) = (args.table.csv(), args.table.seed);
    let sizes: Vec<usize> = std::env::var("SIZES").map_or(vec![50, 100, 200, 500, 1000], |s| {
        s.split(',').filter_map(|x| x.parse().ok()).collect()
    });
    let columns = [
        "raspi4_latency",
        "pixel3_latency",
        "gold_6226_latency",
        "eyeriss_latency",
        "fpga_latency",
    ];
    let one_hot = ArchEncoding::OneHot {
        radices: vec![5; 6],
    };
    println!(
        "| target | train N | model | within 1 % | within 10 % | within 20 % | RMSE (ms) | Spearman |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let only: Option<String> = std::env::var("COLUMNS").ok();
    for col in columns {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|c| c == col))
        {
            continue;
        }
        let data = read_arch_targets(csv, col)?;
        let mut order: Vec<usize> = (0..data.cells.len()).collect();
        order.shuffle(&mut dynas_space::seeded_rng(seed));
        for &n in &sizes {
            let (train, test) = order.split_at(n.min(order.len() - 1));
            let genes = |idx: &[usize]| -> Vec<Vec<usize>> {
                idx.iter().map(|&i| data.cells[i].ops().to_vec()).collect()
            };
            let y = |idx: &[usize]| -> Vec<f64> { idx.iter().map(|&i| data.targets[i]).collect() };
            let mut runs = vec![(
                "ridge+gbdt, path features",
                ArchEncoding::Nb201,
                Learner::default().with_seed(seed),
                TargetScale::Linear,
            )];
            if std::env::var("RELATIVE").is_ok() {
                runs.push((
                    "ridge+gbdt relative, path features",
                    ArchEncoding::Nb201,
                    Learner::default().with_seed(seed),
                    TargetScale::Relative,
                ));
            }
            if n == 1000 {
                runs.push((
                    "gbdt (log), one-hot",
                    one_hot.clone(),
                    Learner::from_name("gbdt")?.with_seed(seed),
                    TargetScale::Log,
                ));
                runs.push((
                    "linear, one-hot",
                    one_hot.clone(),
                    Learner::Ridge { lambda: 1e-6 },
                    TargetScale::Linear,
                ));
            }
            for (name, enc, learner, scale) in runs {
                let model = ArchPredictor::fit(enc, &genes(train), &y(train), learner, scale)?;
                let pred: Vec<f64> = genes(test)
                    .iter()
                    .map(|g| model.predict(g))
                    .collect::<Result<_, _>>()?;
                let m = RegressionMetrics::compute(&y(test), &pred)?;
                println!(
                    "| {col} | {n} | {name} | {:.1} % | {:.1} % | {:.1} % | {:.3} | {} |",
                    100.0 * m.within_1,
                    100.0 * m.within_10,
                    100.0 * m.within_20,
                    m.rmse,
                    spearman(m.spearman)
                );
            }
        }
    }
    Ok(())
}

/// A Spearman correlation for the table (`undefined` when a side is constant).
fn spearman(s: Option<f64>) -> String {
    s.map_or("undefined".to_string(), |s| format!("{s:.4}"))
}
