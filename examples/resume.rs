//! Checkpoints and resuming: a search killed part-way continues from its checkpoint and ends
//! exactly where an uninterrupted run with the same seed ends.
//!
//! NSGA-II over the NAS-Bench-201 table (CIFAR-100 accuracy against Raspberry Pi 4 latency,
//! shipped with dynas) writes a checkpoint after every generation. An observer stops it after
//! three generations (as a kill, a crash or a time limit would); running the same program again
//! with the same checkpoint path continues from the file. The resumed front is compared with an
//! uninterrupted run's.
//!
//! ```text
//! cargo run -p dynas --example resume
//! ```

use dynas::prelude::*;
use dynas::search::{Control, Event, observer_fn};
use dynas::search::{Nsga2Config, TableProblem};

const BUDGET: usize = 400;

fn search(problem: &TableProblem) -> Executor<'_, Nsga2> {
    let nsga2 = Nsga2::new(Nsga2Config::default()).expect("default settings are valid");
    let budget = Budget::evaluations(BUDGET).expect("a positive budget");
    Executor::new(problem, nsga2, budget).seed(7)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let problem = TableProblem::from_csv(
        dynas_data::path(dynas_data::NB201_HW_CSV),
        vec![
            Objective::maximize("acc_cifar100"),
            Objective::minimize("raspi4_latency"),
        ],
    )?;
    let dir = std::env::temp_dir().join(format!("dynas-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let checkpoint = dir.join("search.ckpt.json");

    // 1. Interrupted: an observer stops the search after its third generation. The checkpoint
    //    written after that generation stays on disk.
    let interrupted = search(&problem)
        .checkpoint(&checkpoint, 1)?
        .observe(observer_fn(|event| match event {
            Event::Generation {
                generation: 3,
                evaluations,
                ..
            } => Control::Stop(format!(
                "stopped after 3 generations, {evaluations} evaluations"
            )),
            _ => Control::Continue,
        }))
        .run();
    match interrupted {
        Err(SearchError::Interrupted(why)) => println!("interrupted: {why}"),
        other => return Err(format!("expected an interruption, got {other:?}").into()),
    }

    // 2. Resumed: the same search with the same checkpoint path continues from the file (a
    //    checkpoint of another search would be refused, `.overwrite_checkpoint()` starts over).
    let resumed = search(&problem).checkpoint(&checkpoint, 1)?.run()?;
    println!(
        "resumed (from the file: {1}): {0} architectures, {2} generations, {3} on the front",
        resumed.archive.len(),
        resumed.resumed,
        resumed.generations,
        resumed.front.len()
    );

    // 3. The reference: the same seed, never interrupted.
    let reference = search(&problem).run()?;
    assert_eq!(resumed.archive, reference.archive);
    assert_eq!(resumed.front, reference.front);
    println!("the resumed search found the uninterrupted run's front:");
    for p in resumed.front.points.iter().take(5) {
        println!(
            "  {:5.2} %  {:7.2} ms  {}",
            p.values[0], p.values[1], p.genotype
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
