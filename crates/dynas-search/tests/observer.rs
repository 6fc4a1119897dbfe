//! Observers: the JSON-lines log records every evaluation and generation, and continues across
//! a resume.

mod common;

#[cfg(feature = "progress")]
use dynas_search::ProgressObserver;
use dynas_search::{Budget, Executor, JsonLinesObserver, Nsga2, Nsga2Config};

#[test]
fn json_lines_log_has_every_event_and_survives_resume() {
    let problem = common::nb201();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let ckpt = dir.path().join("ckpt.json");
    let make = || Nsga2::new(Nsga2Config::default()).unwrap();
    let executor = Executor::new(problem, make(), Budget::generations(2).unwrap())
        .seed(1)
        .checkpoint(&ckpt, 1)
        .unwrap()
        .observe(JsonLinesObserver::append(&log).unwrap());
    #[cfg(feature = "progress")]
    let executor = executor.observe(ProgressObserver::new(48));
    executor.run().unwrap();
    let result = Executor::new(problem, make(), Budget::generations(3).unwrap())
        .resume_from(&ckpt)
        .unwrap()
        .observe(JsonLinesObserver::append(&log).unwrap())
        .run()
        .unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |kind: &str| lines.iter().filter(|l| l["event"] == kind).count();
    assert_eq!(count("started"), 2);
    assert_eq!(count("finished"), 2);
    assert_eq!(count("generation"), 3);
    assert_eq!(count("evaluated"), result.archive.len());
    assert_eq!(lines[1]["event"], "evaluated");
    assert_eq!(
        lines[1]["genotype"],
        result.archive.records()[0].genotype.to_string()
    );
    let resumed = lines.iter().find(|l| l["resumed"] == true).unwrap();
    assert_eq!(resumed["generation"], 2);
}
