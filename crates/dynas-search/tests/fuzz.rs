//! Fuzz targets for the parsers of user files that a search reads: benchmark tables (CSV),
//! search checkpoints (JSON), HADAS per-exit accuracy tables (CSV), deployment files (JSON,
//! versions 1 and 2) and the space definitions and architecture strings of `dynas-space`.
//! Seeds are real files; see `fuzz_support` for the mutations and `DYNAS_FUZZ_CASES`.

mod common;
mod fuzz_support;

use std::path::Path;
use std::sync::OnceLock;

use dynas_cost::{ClockDomain, DeviceProfile, DomainName};
use dynas_exits::HadasExitData;
use dynas_search::{
    AgingConfig, AgingEvolution, Budget, DeployedExit, DeployedMetrics, Deployment,
    DeploymentPoint, Executor, Nsga2, Nsga2Config, Objective, Provenance, TableProblem,
};
use dynas_space::{FbNetSpace, MbConvSpace, Nb201Space, SearchSpace};
use fuzz_support::{config, edits, head, mutate, scratch_file};
use proptest::prelude::*;

const A0_EXITS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/exits/hadas-attentivenas-cifar100/a0_exit_accuracy.csv"
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

    #[test]
    fn deployment_json(named in any::<bool>(), e in edits()) {
        // Seeds written by the library: a version-1 deployment on the Jetson AGX Xavier
        // (real clock table) and a version-2 one whose board adds a DLA clock domain.
        static SEEDS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        let (v1, v2) = SEEDS.get_or_init(|| (deployment_seed(false), deployment_seed(true)));
        let seed = if named { v2 } else { v1 };
        let (_dir, path) = scratch_file("deployment.json", &mutate(seed, &e));
        match Deployment::from_json_file(&path) {
            Ok(d) => {
                // An accepted file is valid as a whole and writes back to an equal one.
                prop_assert!(d.validate(&path).is_ok());
                let text = serde_json::to_string(&d).unwrap();
                let back = Deployment::from_json_str(&text, &path);
                prop_assert!(back.is_ok(), "{:?}", back.err());
            }
            Err(err) => prop_assert!(err.to_string().contains("deployment.json"), "{err}"),
        }
    }
}

/// A deployment of two configurations on the Jetson AGX Xavier clocks, with a DLA clock
/// domain when `named`.
fn deployment_seed(named: bool) -> Vec<u8> {
    let mut device = DeviceProfile::jetson_agx_xavier();
    let dla = ClockDomain::named("dla0").unwrap();
    if named {
        device = device
            .with_domain(
                DomainName::new("dla0").unwrap(),
                vec![640_000_000, 1_395_200_000],
            )
            .unwrap();
    }
    let points = [(0usize, 90.5, 2.5), (3usize, 88.25, 1.75)]
        .into_iter()
        .map(|(k, top1, latency_ms)| {
            let mut point = device.operating_points()[k * 97].clone();
            if named {
                point = point.with_clock(dla.clone(), 640_000_000).unwrap();
            }
            DeploymentPoint {
                genotype: {
                    let mut g = dynas_space::MbConvSpace::ofa_mnist().largest().into_genes();
                    g[1] = k % 3;
                    dynas_space::Genotype::new(g)
                },
                exits: vec![DeployedExit {
                    after_layer: dynas_space::LayerIndex::new(1),
                    threshold: 0.875,
                    exit_rate: 0.25,
                }],
                point,
                metrics: DeployedMetrics {
                    top1,
                    latency_ms,
                    energy_mj: Some(3.0 * latency_ms),
                    accuracy_source: Provenance::measured("validation split"),
                    cost_source: Provenance::modelled("Xavier LUT x fitted DVFS laws"),
                },
            }
        })
        .collect();
    let d = Deployment::new(
        "hadas",
        &dynas_space::MbConvSpace::ofa_mnist(),
        Some(device),
        points,
    )
    .unwrap();
    serde_json::to_vec_pretty(&d).unwrap()
}
