//! What checkpointing every generation costs: the same NSGA-II search (8,000 distinct
//! evaluations on the NAS-Bench-201 table, 24 per generation, so about 330 generations) run
//! with a checkpoint written only at the end and with one written after every generation,
//! interleaved, several times; prints the median times and their ratio, and checks that both
//! runs found the same archive.
//!
//! ```text
//! cargo run --release -p dynas-search --example bench_checkpoint_cost -- [EVALUATIONS] [REPEATS] [DIR]
//! ```
//! `DIR` (default: the system's temporary directory) holds the checkpoints; use a directory on
//! the disk whose cost you want to know.

use std::path::PathBuf;
use std::time::Instant;

use dynas_search::{Budget, Executor, Nsga2, Nsga2Config, Objective, TableProblem};

const TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let evaluations: usize = args.next().map_or(Ok(8_000), |a| a.parse())?;
    let repeats: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let dir: PathBuf = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let problem = TableProblem::from_csv(
        TABLE,
        vec![
            Objective::minimize("raspi4_latency"),
            Objective::maximize("acc_cifar100"),
        ],
    )?;
    let run = |every: usize| -> Result<(f64, usize, u64), Box<dyn std::error::Error>> {
        let path = dir.join(format!(
            "bench-checkpoint-{}-{every}.json",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let started = Instant::now();
        let result = Executor::new(
            &problem,
            Nsga2::new(Nsga2Config::default())?,
            Budget::evaluations(evaluations)?,
        )
        .seed(7)
        .checkpoint(&path, every)?
        .run()?;
        let seconds = started.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path)?.len();
        std::fs::remove_file(&path)?;
        let digest = result
            .archive
            .records()
            .iter()
            .map(|r| r.genotype.to_string())
            .collect::<Vec<_>>()
            .join(",");
        Ok((seconds, digest.len() ^ result.generations, size))
    };
    let (mut at_end, mut every_generation) = (Vec::new(), Vec::new());
    let mut generations = 0;
    let mut size = 0;
    for _ in 0..repeats {
        let (t_end, d_end, s) = run(usize::MAX)?;
        let (t_every, d_every, _) = run(1)?;
        assert_eq!(d_end, d_every, "the two runs searched differently");
        at_end.push(t_end);
        every_generation.push(t_every);
        generations = d_end;
        size = s;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (end, every) = (median(&mut at_end), median(&mut every_generation));
    let _ = generations;
    println!(
        "{evaluations} evaluations, final checkpoint {:.2} MB, median of {repeats}: \
         checkpoint at the end {end:.2} s, every generation {every:.2} s, ratio {:.2}",
        size as f64 / 1e6,
        every / end
    );
    Ok(())
}
