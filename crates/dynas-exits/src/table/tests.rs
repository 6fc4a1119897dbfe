use super::*;
use crate::calibration::expected_calibration_error;
use crate::policy::{ExitPolicy, PolicyState};
use crate::synthetic::normal_quantile;
use crate::thresholds::ThresholdCalibration;
use approx::assert_relative_eq;
use rand::Rng;

fn pos(n: usize) -> Vec<ExitPosition> {
    (0..n)
        .map(|i| ExitPosition::new(format!("e{i}"), i))
        .collect()
}

#[test]
fn hand_example_rates_and_accuracy() {
    // 4 samples; exit 0, exit 1, final.
    let table = ExitTable::from_scores(
        pos(2),
        vec![
            vec![0.95, 0.5, 0.9, 0.2],
            vec![0.99, 0.85, 0.3, 0.4],
            vec![1.0; 4],
        ],
        vec![
            vec![true, false, false, false],
            vec![true, true, true, false],
            vec![true, true, true, true],
        ],
    )
    .expect("valid");
    let sel = ExitSelection::new(vec![0, 1], ExitRule::MaxSoftmax(vec![0.9, 0.8])).expect("ok");
    let st = table.evaluate(&sel).expect("ok");
    // s0, s2 leave at exit 0 (s2 wrong); s1 at exit 1 (right); s3 at the final (right).
    assert_eq!(st.rates, vec![0.5, 0.25, 0.25]);
    assert_relative_eq!(st.accuracy, 0.75);
    assert_eq!(st.exit_accuracy, vec![Some(0.5), Some(1.0), Some(1.0)]);
    let oracle = table.oracle(&[0, 1]).expect("ok");
    assert_eq!(oracle.rates, vec![0.25, 0.5, 0.25]);
    assert_relative_eq!(oracle.accuracy, 1.0);
    assert!(matches!(
        table.evaluate(&ExitSelection::new(vec![0], ExitRule::Patience(2)).expect("ok")),
        Err(ExitError::Unsupported(_))
    ));
    assert!(ExitSelection::new(vec![1, 0], ExitRule::Patience(1)).is_err());
    assert!(
        ExitTable::from_scores(pos(1), vec![vec![1.5], vec![0.5]], vec![vec![true]; 2]).is_err()
    );
    assert!(ExitTable::from_scores(pos(1), vec![vec![0.5]], vec![vec![true]]).is_err());
}

fn random_outputs(n: usize, columns: usize, classes: usize, seed: u64) -> ExitOutputs {
    let mut rng = dynas_space::seeded_rng(seed);
    let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    let logits = (0..columns)
        .map(|c| {
            let mut v = Vec::with_capacity(n * classes);
            for &l in &labels {
                for k in 0..classes {
                    let signal = if k == l { 0.8 * c as f32 } else { 0.0 };
                    v.push(signal + rng.random_range(-1.5f32..1.5));
                }
            }
            v
        })
        .collect();
    ExitOutputs::new(logits, labels, classes).expect("valid")
}

/// The table engine and the run-time policy must make the same decision for every sample.
#[test]
fn table_agrees_with_runtime_policy_for_every_rule() {
    let out = random_outputs(300, 4, 5, 11);
    let temps = [1.3, 0.9, 1.1, 1.0];
    let table = ExitTable::from_outputs(pos(3), &out, Some(&temps)).expect("ok");
    let exits = vec![0usize, 2];
    for rule in [
        ExitRule::MaxSoftmax(vec![0.6, 0.5]),
        ExitRule::Entropy(vec![1.0, 1.2]),
        ExitRule::Patience(2),
    ] {
        let st = table
            .evaluate(&ExitSelection::new(exits.clone(), rule.clone()).expect("ok"))
            .expect("ok");
        let policy = ExitPolicy::new(rule, 2)
            .expect("ok")
            .with_temperatures(vec![temps[0], temps[2]])
            .expect("ok");
        let mut leave = [0usize; 3];
        let mut hits = 0usize;
        for (s, &label) in out.labels().iter().enumerate() {
            let mut state = PolicyState::default();
            let mut slot = 2;
            let mut pred = 0;
            for (j, &e) in exits.iter().enumerate() {
                let row = &out.logits(e).expect("col")[s * 5..(s + 1) * 5];
                let d = policy.decide(j, row, &mut state).expect("ok");
                if d.exit {
                    slot = j;
                    pred = d.prediction;
                    break;
                }
            }
            if slot == 2 {
                let row = &out.logits(3).expect("col")[s * 5..(s + 1) * 5];
                pred = crate::calibration::summarize(row, 1.0)
                    .expect("finite")
                    .prediction;
            }
            leave[slot] += 1;
            hits += usize::from(pred == label);
        }
        let rates: Vec<f64> = leave.iter().map(|&l| l as f64 / 300.0).collect();
        assert_eq!(st.rates, rates, "{:?}", policy.rule());
        assert_relative_eq!(st.accuracy, hits as f64 / 300.0);
    }
}

#[test]
fn synthetic_table_matches_accuracies_and_is_calibrated_and_nested() {
    let accs = [0.3, 0.55, 0.7, 0.82];
    let model = SyntheticConfidence::new(2.0, 5000, 9).expect("ok");
    let table = ExitTable::synthesize(pos(4), &accs, 0.86, &model).expect("ok");
    for (c, &a) in accs.iter().chain([0.86].iter()).enumerate() {
        assert_relative_eq!(table.accuracy(c).expect("col"), a, epsilon = 1.0 / 5000.0);
        let ece = expected_calibration_error(
            table.confidences(c).expect("col"),
            table.correctness(c).expect("col"),
            10,
        )
        .expect("ok");
        assert!(ece < 0.03, "column {c}: ECE {ece}");
    }
    // Nested: correct at a less accurate column implies correct at a more accurate one.
    for s in 0..table.samples() {
        for c in 0..4 {
            let ok = table.correctness(c).expect("col")[s];
            assert!(!ok || table.correctness(c + 1).expect("col")[s]);
        }
    }
    assert_eq!(
        table
            .confidence_histogram(4, 10)
            .expect("ok")
            .iter()
            .sum::<usize>(),
        5000
    );
    assert!(SyntheticConfidence::new(0.0, 10, 0).is_err());
    assert!(ExitTable::synthesize(pos(2), &[0.5], 0.9, &model).is_err());
    assert!(ExitTable::synthesize(pos(1), &[1.5], 0.9, &model).is_err());
    // Same seed, same table.
    assert_eq!(
        ExitTable::synthesize(pos(4), &accs, 0.86, &model).expect("ok"),
        table
    );
}

#[test]
fn calibration_meets_the_target_and_saves_depth() {
    let out = random_outputs(2000, 4, 5, 21);
    let table = ExitTable::from_outputs(pos(3), &out, None).expect("ok");
    for measure in [ConfidenceMeasure::MaxSoftmax, ConfidenceMeasure::Entropy] {
        for drop in [0.0, 0.01, 0.05] {
            let cal = ThresholdCalibration::new(drop, measure, 32).expect("ok");
            let r = table.calibrate(&[0, 1, 2], &cal, None).expect("ok");
            assert!(r.statistics.accuracy + 1e-12 >= table.final_accuracy() - drop);
            assert_eq!(r.statistics, table.evaluate(&r.selection).expect("ok"));
            if drop >= 0.05 {
                assert!(
                    r.statistics.rates[3] < 1.0,
                    "{measure:?}: no input left early"
                );
            }
        }
    }
    assert!(ThresholdCalibration::new(1.5, ConfidenceMeasure::MaxSoftmax, 8).is_err());
    assert!(ThresholdCalibration::new(0.01, ConfidenceMeasure::MaxSoftmax, 1).is_err());
}

#[test]
fn normal_quantile_is_accurate() {
    assert_relative_eq!(normal_quantile(0.5), 0.0, epsilon = 1e-12);
    assert_relative_eq!(
        normal_quantile(0.975),
        1.959_963_984_540_054,
        epsilon = 1e-8
    );
    assert_relative_eq!(
        normal_quantile(0.001),
        -3.090_232_306_167_813_5,
        epsilon = 1e-8
    );
}
