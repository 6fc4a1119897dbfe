//! Work that never ends or gets lost, and results that are silently wrong: exhausted spaces
//! stop every strategy, checkpoints resume by themselves and are refused when foreign or
//! damaged, fronts are labelled.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use approx::assert_relative_eq;
use dynas_cost::analytical::{AnalyticalModel, AnalyticalParams};
use dynas_cost::{CostModel, DeviceProfile};
use dynas_search::{
    AccuracyFn, AccuracySource, AgingConfig, AgingEvolution, Budget, Control, Evaluation, Event,
    Executor, HardwareProblem, JointHardwareProblem, JsonLinesObserver, Metric, Nsga2, Nsga2Config,
    Objective, OfaEvolution, OfaEvolutionConfig, Problem, RandomSearch, SearchError, StopReason,
    Strategy, TableAccuracy, TableProblem,
};
use dynas_space::{Genotype, Nb201Space, SearchSpace};

/// The first rows of the real NAS-Bench-201 table (header included) in a file of their own.
fn head_of_nb201(dir: &Path, rows: usize, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(common::NB201).expect("nb201_hw.csv");
    let head: Vec<&str> = text.lines().take(rows + 1).collect();
    let path = dir.join(name);
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

fn objectives() -> Vec<Objective> {
    vec![
        Objective::minimize("raspi4_latency"),
        Objective::maximize("acc_cifar100"),
    ]
}

/// Runs `strategy` on a tiny table with a budget far beyond its space; the generation cap only
/// keeps a regression from hanging the test.
fn exhaust<S: Strategy>(problem: &TableProblem, strategy: S) -> (StopReason, usize) {
    let budget = Budget::evaluations(20_000)
        .unwrap()
        .and_generations(3_000)
        .unwrap();
    let r = Executor::new(problem, strategy, budget)
        .seed(4)
        .run()
        .unwrap();
    (r.stop_reason, r.archive.len())
}

#[test]
fn every_strategy_stops_when_the_space_is_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let problem =
        TableProblem::from_csv(head_of_nb201(dir.path(), 2, "two.csv"), objectives()).unwrap();
    let cardinality = problem.space().cardinality() as usize;
    assert!(
        cardinality > 2,
        "a 2-row table spans {cardinality} genotypes"
    );
    let small_aging = AgingConfig {
        population: 4,
        sample: 2,
        ..AgingConfig::default()
    };
    let small_nsga2 = Nsga2Config {
        population: 4,
        offspring: 4,
        ..Nsga2Config::default()
    };
    let small_ofa = OfaEvolutionConfig {
        population: 4,
        ..OfaEvolutionConfig::default()
    };
    let runs = [
        (
            "aging",
            exhaust(&problem, AgingEvolution::new(small_aging).unwrap()),
        ),
        ("random", exhaust(&problem, RandomSearch::new(5).unwrap())),
        ("nsga2", exhaust(&problem, Nsga2::new(small_nsga2).unwrap())),
        (
            "ofa",
            exhaust(&problem, OfaEvolution::new(small_ofa).unwrap()),
        ),
    ];
    for (name, (reason, evaluated)) in runs {
        eprintln!("{name}: {reason:?} after {evaluated} of {cardinality}");
        assert!(
            matches!(
                reason,
                StopReason::SpaceExhausted | StopReason::StrategyDone | StopReason::Stalled
            ),
            "{name} stopped by {reason:?}"
        );
        if reason != StopReason::Stalled {
            assert_eq!(evaluated, cardinality, "{name}");
        }
    }
    // Aging evolution never finishes by itself: only the exhaustion check stops it.
    assert_eq!(runs[0].1.0, StopReason::SpaceExhausted);
}

/// The NAS-Bench-201 table where only the 125 genotypes whose first three genes are 0 pass
/// the precheck.
struct FirstGeneZero(&'static TableProblem);

impl Problem for FirstGeneZero {
    fn name(&self) -> &str {
        "first-gene-zero"
    }
    fn space(&self) -> &dyn SearchSpace {
        self.0.space()
    }
    fn objectives(&self) -> &[Objective] {
        self.0.objectives()
    }
    fn evaluate(&self, genotype: &Genotype) -> dynas_search::Result<Evaluation> {
        self.0.evaluate(genotype)
    }
    fn precheck(&self, genotype: &Genotype) -> dynas_search::Result<bool> {
        Ok(genotype.genes()[..3] == [0, 0, 0])
    }
}

#[test]
fn a_strategy_that_only_revisits_known_architectures_stops_as_stalled() {
    // Once the children that pass the precheck are all known, OFA evolution can only redraw
    // them: without the stall limit it would run into the generation cap.
    let problem = FirstGeneZero(common::nb201());
    let budget = Budget::evaluations(1_000)
        .unwrap()
        .and_generations(2_000)
        .unwrap();
    let config = OfaEvolutionConfig {
        population: 4,
        ..OfaEvolutionConfig::default()
    };
    let r = Executor::new(&problem, OfaEvolution::new(config).unwrap(), budget)
        .stall_limit(25)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(r.stop_reason, StopReason::Stalled);
    assert!(r.archive.len() <= 125, "{}", r.archive.len());
    assert!(r.generations < 2_000, "{}", r.generations);
}

fn nsga2() -> Nsga2 {
    Nsga2::new(Nsga2Config::default()).unwrap()
}

fn count_evaluations(
    counter: &Arc<AtomicUsize>,
) -> impl FnMut(&Event<'_>) -> Control + Send + 'static {
    let counter = Arc::clone(counter);
    move |e: &Event<'_>| {
        if matches!(e, Event::Evaluated { .. }) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Control::Continue
    }
}

#[test]
fn rerunning_with_the_same_checkpoint_resumes_instead_of_starting_over() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    let first = Executor::new(problem, nsga2(), Budget::generations(2).unwrap())
        .seed(11)
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    assert!(!first.resumed);
    // The same program, run again with a larger budget: it continues from the checkpoint.
    let fresh = Arc::new(AtomicUsize::new(0));
    let second = Executor::new(problem, nsga2(), Budget::generations(4).unwrap())
        .seed(11)
        .checkpoint(&path, 1)
        .unwrap()
        .observe(count_evaluations(&fresh))
        .run()
        .unwrap();
    let straight = Executor::new(problem, nsga2(), Budget::generations(4).unwrap())
        .seed(11)
        .run()
        .unwrap();
    assert!(second.resumed);
    assert_eq!(second.archive, straight.archive);
    assert_eq!(second.state, straight.state);
    assert_eq!(
        fresh.load(Ordering::Relaxed),
        straight.archive.len() - first.archive.len()
    );
    // `overwrite_checkpoint` starts over.
    let again = Executor::new(problem, nsga2(), Budget::generations(1).unwrap())
        .seed(11)
        .checkpoint(&path, 1)
        .unwrap()
        .overwrite_checkpoint()
        .run()
        .unwrap();
    assert!(!again.resumed);
    assert_eq!(again.generations, 1);
}

#[test]
fn a_checkpoint_of_another_search_is_refused_and_left_untouched() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    Executor::new(problem, nsga2(), Budget::generations(2).unwrap())
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Executor::new(
        problem,
        RandomSearch::new(10).unwrap(),
        Budget::generations(3).unwrap(),
    )
    .checkpoint(&path, 1)
    .unwrap()
    .run()
    .unwrap_err();
    assert!(
        matches!(&err, SearchError::CheckpointMismatch { field, .. } if field == "strategy"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // No temporary file is left next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn a_seed_that_differs_from_the_checkpoint_is_refused_and_the_used_seed_is_reported() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    Executor::new(problem, nsga2(), Budget::generations(2).unwrap())
        .seed(11)
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    let err = Executor::new(problem, nsga2(), Budget::generations(3).unwrap())
        .seed(99)
        .resume_from(&path)
        .unwrap()
        .run()
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::CheckpointMismatch { field, .. } if field == "seed"),
        "{err}"
    );
    let resumed = Executor::new(problem, nsga2(), Budget::generations(3).unwrap())
        .resume_from(&path)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(resumed.seed, 11);
    assert!(resumed.resumed);
}

#[test]
fn a_checkpoint_is_refused_for_other_data_under_the_same_file_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    let a = head_of_nb201(&dir.path().join("a"), 400, "table.csv");
    let b = head_of_nb201(&dir.path().join("b"), 399, "table.csv");
    let path = dir.path().join("ckpt.json");
    let on_a = TableProblem::from_csv(&a, objectives()).unwrap();
    Executor::new(
        &on_a,
        RandomSearch::new(20).unwrap(),
        Budget::generations(1).unwrap(),
    )
    .checkpoint(&path, 1)
    .unwrap()
    .run()
    .unwrap();
    let on_b = TableProblem::from_csv(&b, objectives()).unwrap();
    assert_eq!(on_a.name(), on_b.name());
    let err = Executor::new(
        &on_b,
        RandomSearch::new(20).unwrap(),
        Budget::generations(2).unwrap(),
    )
    .resume_from(&path)
    .err()
    .expect("other data");
    assert!(
        matches!(&err, SearchError::CheckpointMismatch { field, .. } if field == "problem_fingerprint"),
        "{err}"
    );
}

/// Writes a checkpoint of a short aging search, lets `damage` edit its JSON, and resumes it.
fn resume_damaged(damage: impl FnOnce(&mut serde_json::Value)) -> SearchError {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.json");
    let aging = || AgingEvolution::new(AgingConfig::default()).unwrap();
    Executor::new(problem, aging(), Budget::generations(3).unwrap())
        .checkpoint(&path, 1)
        .unwrap()
        .run()
        .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    damage(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
    let outcome = Executor::new(problem, aging(), Budget::generations(5).unwrap())
        .resume_from(&path)
        .and_then(|e| e.run());
    match outcome {
        Err(e) => e,
        Ok(r) => panic!(
            "the damaged checkpoint resumed ({} generations)",
            r.generations
        ),
    }
}

fn zero_numbers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(_) => *v = serde_json::json!(0),
        serde_json::Value::Array(a) => a.iter_mut().for_each(zero_numbers),
        serde_json::Value::Object(o) => o.values_mut().for_each(zero_numbers),
        _ => {}
    }
}

fn field_of(err: &SearchError) -> String {
    match err {
        SearchError::CheckpointMismatch { field, .. } => field.clone(),
        other => panic!("not a checkpoint mismatch: {other}"),
    }
}

#[test]
fn resume_validates_every_field_of_a_checkpoint() {
    let err = resume_damaged(|j| {
        j["archive"][3]["evaluation"]["values"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert_eq!(field_of(&err), "archive[3]");
    let err = resume_damaged(|j| {
        let first = j["archive"][0].clone();
        j["archive"].as_array_mut().unwrap().push(first);
    });
    assert!(err.to_string().contains("recorded twice"), "{err}");
    let err = resume_damaged(|j| j["state"]["queue"] = serde_json::json!([]));
    assert_eq!(field_of(&err), "state");
    let err = resume_damaged(|j| zero_numbers(&mut j["rng"]));
    assert_eq!(field_of(&err), "rng");
    let err = resume_damaged(|j| j["generation"] = serde_json::json!(u64::MAX));
    assert_eq!(field_of(&err), "generation");
    let err = resume_damaged(|j| j["elapsed_s"] = serde_json::json!(1e300));
    assert_eq!(field_of(&err), "elapsed_s");
    let err = resume_damaged(|j| j["elapsed_s"] = serde_json::json!(-1.0));
    assert_eq!(field_of(&err), "elapsed_s");
    let err = resume_damaged(|j| {
        let g = j["archive"][0]["genotype"].clone();
        j["state"]["queue"] = serde_json::json!([g, [9, 9, 9, 9, 9, 9]]);
    });
    assert_eq!(field_of(&err), "state");
}

fn nb201_accuracy() -> &'static TableAccuracy {
    static ACC: OnceLock<TableAccuracy> = OnceLock::new();
    ACC.get_or_init(|| TableAccuracy::from_csv(common::NB201, "acc_cifar100").unwrap())
}

fn xavier_model() -> AnalyticalModel {
    AnalyticalModel::new(
        DeviceProfile::jetson_agx_xavier(),
        AnalyticalParams::default(),
    )
    .unwrap()
}

fn space() -> Nb201Space {
    Nb201Space::new().with_num_classes(100).unwrap()
}

#[test]
fn fronts_of_custom_problems_are_labelled_and_unconstrained_violations_are_plus_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    // A closure as the accuracy source.
    let accuracy = AccuracyFn::new("table-closure", |g: &Genotype, n: &dynas_space::Network| {
        nb201_accuracy().accuracy(g, n)
    });
    let point = DeviceProfile::jetson_agx_xavier().max_operating_point();
    // A borrowed cost model (`CostModel for &M`), so the caller keeps it.
    let model = xavier_model();
    let problem = HardwareProblem::new(
        space(),
        accuracy,
        &model,
        point,
        vec![Metric::Error, Metric::LatencyMs],
    )
    .unwrap();
    let result = Executor::new(&problem, nsga2(), Budget::evaluations(48).unwrap())
        .observe(JsonLinesObserver::append(&log).unwrap())
        .run()
        .unwrap();
    assert!(!result.front.is_empty());
    for p in &result.front.points {
        assert_eq!(p.label, Some(space().describe(&p.genotype).unwrap()));
        assert_eq!(p.genes.len(), space().dimensions().len());
        assert_eq!(p.genes[0].dimension, space().dimensions()[0].name());
    }
    for r in result.archive.records() {
        assert!(r.evaluation.violation.is_sign_positive());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"violation\":0.0"), "{text}");
    assert!(!text.contains("-0.0"));
}

#[derive(Debug)]
struct LabError;

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the lab server is down")
    }
}

impl std::error::Error for LabError {}

#[test]
fn errors_of_the_users_own_type_keep_their_source() {
    let accuracy = AccuracyFn::new("lab", |_: &Genotype, _: &dynas_space::Network| {
        Err(SearchError::external(
            "asking the lab for an accuracy",
            LabError,
        ))
    });
    let network = space().decode(&space().smallest()).unwrap();
    let err = accuracy
        .accuracy(&space().smallest(), &network)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "asking the lab for an accuracy: the lab server is down"
    );
    let source = std::error::Error::source(&err).expect("source kept");
    assert!(source.downcast_ref::<LabError>().is_some());
    // What `main` returning the error prints: the sentence, not a struct dump.
    assert_eq!(format!("{err:?}"), err.to_string());
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(!format!("{boxed:?}").contains("External {"));
}

/// A cost model whose board never answers.
struct Unplugged;

impl CostModel for Unplugged {
    fn name(&self) -> &str {
        "unplugged"
    }
    fn estimate(
        &self,
        _: &dynas_space::Network,
        _: &dynas_cost::OperatingPoint,
    ) -> dynas_cost::Result<dynas_cost::Cost> {
        Err(dynas_cost::CostError::external(
            "timing on the board",
            LabError,
        ))
    }
}

#[test]
fn a_cost_models_own_error_reaches_the_search_with_its_source() {
    let point = DeviceProfile::jetson_agx_xavier().max_operating_point();
    let problem = HardwareProblem::new(
        space(),
        nb201_accuracy(),
        Unplugged,
        point,
        vec![Metric::Error, Metric::LatencyMs],
    )
    .unwrap();
    let err = problem.evaluate(&space().smallest()).unwrap_err();
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    let mut found = false;
    while let Some(e) = source {
        found |= e.downcast_ref::<LabError>().is_some();
        source = e.source();
    }
    assert!(found, "{err}");
    assert!(err.to_string().contains("the lab server is down"), "{err}");
}

#[test]
fn the_joint_problem_searches_backbone_and_operating_point_together() {
    let device = DeviceProfile::jetson_agx_xavier();
    let points: Vec<_> = device.operating_points().into_iter().step_by(97).collect();
    assert!(points.len() >= 3);
    let problem = JointHardwareProblem::new(
        space(),
        nb201_accuracy(),
        xavier_model(),
        points.clone(),
        vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
    )
    .unwrap();
    assert_eq!(
        problem.space().cardinality(),
        space().cardinality() * points.len() as u128
    );
    let result = Executor::new(&problem, nsga2(), Budget::evaluations(120).unwrap())
        .seed(3)
        .run()
        .unwrap();
    // Each joint evaluation is the fixed-point problem's evaluation at the chosen clocks.
    for r in result.archive.records().iter().take(12) {
        let (backbone, point) = problem.split(&r.genotype).unwrap();
        let fixed = HardwareProblem::new(
            space(),
            nb201_accuracy(),
            xavier_model(),
            point,
            vec![Metric::Error, Metric::LatencyMs, Metric::EnergyMj],
        )
        .unwrap();
        let expected = fixed.evaluate(&backbone).unwrap();
        for (a, b) in r.evaluation.values.iter().zip(&expected.values) {
            assert_relative_eq!(*a, *b);
        }
    }
    let chosen: std::collections::HashSet<usize> = result
        .front
        .points
        .iter()
        .map(|p| *p.genotype.genes().last().unwrap())
        .collect();
    assert!(chosen.len() > 1, "the front uses one operating point only");
    let model = xavier_model();
    let (backbone, point) = problem.split(&result.front.points[0].genotype).unwrap();
    let cost = model
        .estimate(&space().decode(&backbone).unwrap(), &point)
        .unwrap();
    assert_relative_eq!(result.front.points[0].values[1], cost.latency_ms);
}
