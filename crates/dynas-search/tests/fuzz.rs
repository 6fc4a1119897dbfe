//! Fuzz targets for the parsers of user files that a search reads: benchmark tables (CSV),
//! search checkpoints (JSON), HADAS per-exit accuracy tables (CSV) and the space definitions and
//! architecture strings of `dynas-space`. Seeds are real files; see `fuzz_support` for the
//! mutations and `DYNAS_FUZZ_CASES`.

mod common;
mod fuzz_support;

use std::path::Path;
use std::sync::OnceLock;

use dynas_exits::HadasExitData;
use dynas_search::{
    AgingConfig, AgingEvolution, Budget, Executor, Nsga2, Nsga2Config, Objective, TableProblem,
};
use dynas_space::{FbNetSpace, MbConvSpace, Nb201Space, SearchSpace};
use fuzz_support::{config, edits, head, mutate, scratch_file};
use proptest::prelude::*;

const A0_EXITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
);

fn objectives() -> Vec<Objective> {
    vec![
        Objective::minimize("raspi4_latency"),
        Objective::maximize("acc_cifar100"),
    ]
}

/// A real checkpoint of a short NSGA-II run on the first 300 rows of NAS-Bench-201, and the
/// table it belongs to.
fn checkpoint_seed() -> &'static (Vec<u8>, Vec<u8>) {
    static SEED: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SEED.get_or_init(|| {
        let table = head(common::NB201, 301);
        let (dir, csv) = scratch_file("nb201_head.csv", &table);
        let problem = TableProblem::from_csv(&csv, objectives()).expect("seed table");
        let path = dir.path().join("ckpt.json");
        let config = Nsga2Config {
            population: 6,
            offspring: 6,
            ..Nsga2Config::default()
        };
        Executor::new(
            &problem,
            Nsga2::new(config).unwrap(),
            Budget::generations(2).unwrap(),
        )
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .expect("seed run");
        (table, std::fs::read(&path).expect("seed checkpoint"))
    })
}

fn nsga2_small() -> Nsga2 {
    Nsga2::new(Nsga2Config {
        population: 6,
        offspring: 6,
        ..Nsga2Config::default()
    })
    .unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn table_csv(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| head(common::NB201, 40));
        let (_dir, path) = scratch_file("t.csv", &mutate(seed, &e));
        if let Ok(problem) = TableProblem::from_csv(&path, objectives()) {
            // A table that loads can be searched.
            let budget = Budget::evaluations(30).unwrap().and_generations(20).unwrap();
            let aging = AgingEvolution::new(AgingConfig {
                population: 4,
                sample: 2,
                ..AgingConfig::default()
            })
            .unwrap();
            prop_assert!(Executor::new(&problem, aging, budget).run().is_ok());
        }
    }

    #[test]
    fn search_checkpoint(e in edits()) {
        let (table, checkpoint) = checkpoint_seed();
        let (dir, csv) = scratch_file("nb201_head.csv", table);
        let problem = TableProblem::from_csv(&csv, objectives()).unwrap();
        let path = dir.path().join("ckpt.json");
        std::fs::write(&path, mutate(checkpoint, &e)).unwrap();
        let budget = Budget::generations(4).unwrap().and_evaluations(60).unwrap();
        match Executor::new(&problem, nsga2_small(), budget).resume_from(&path) {
            Ok(executor) => {
                // Accepted checkpoints resume without panicking (errors are fine).
                let _ = executor.run();
            }
            Err(err) => prop_assert!(err.to_string().contains("ckpt.json"), "{err}"),
        }
    }

    #[test]
    fn hadas_exit_csv(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| std::fs::read(A0_EXITS).expect("a0 exits"));
        let text = String::from_utf8_lossy(&mutate(seed, &e)).into_owned();
        if let Err(err) = HadasExitData::parse(&text, Path::new("a0_exit_accuracy.csv")) {
            prop_assert!(err.to_string().contains("a0_exit_accuracy.csv"), "{err}");
        }
    }

    #[test]
    fn mbconv_space_json(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| {
            serde_json::to_vec_pretty(&MbConvSpace::ofa_mnist().spec()).unwrap()
        });
        let text = String::from_utf8_lossy(&mutate(seed, &e)).into_owned();
        if let Ok(space) = MbConvSpace::from_json_str("space.json", &text) {
            // A space that validates decodes its extremes.
            let _ = space.decode(&space.smallest());
            let _ = space.decode(&space.largest());
        }
    }

    #[test]
    fn architecture_strings(e in edits()) {
        static SEED: OnceLock<(String, String)> = OnceLock::new();
        let (nb201, fbnet) = SEED.get_or_init(|| {
            let arch = String::from_utf8(head(common::NB201, 2)).unwrap();
            let nb201 = arch.lines().nth(1).unwrap().split(',').nth(1).unwrap().to_string();
            let fbnet = FbNetSpace::cifar100();
            let g = fbnet.smallest();
            (nb201, fbnet.describe(&g).unwrap())
        });
        let space = Nb201Space::new();
        let text = String::from_utf8_lossy(&mutate(nb201.as_bytes(), &e)).into_owned();
        if let Ok(g) = space.parse_arch_str(&text) {
            prop_assert!(space.validate(&g).is_ok());
        }
        let fb = FbNetSpace::cifar100();
        let text = String::from_utf8_lossy(&mutate(fbnet.as_bytes(), &e)).into_owned();
        if let Ok(g) = fb.parse_described(&text) {
            prop_assert!(fb.validate(&g).is_ok());
        }
    }
}
