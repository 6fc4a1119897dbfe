//! Bad input that used to panic or hang: trace times too long to play, a co-runner bound too
//! long to be a duration, a device file given as a trace.

use dynas_dvfs::{CoRunner, CoRunnerParams, LoadTrace};

#[test]
fn a_trace_time_too_long_to_play_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.csv");
    std::fs::write(&path, "time_s,co_runner_load\n0.0,0.1\n1e300,0.2\n").unwrap();
    let err = LoadTrace::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("long.csv"), "{err}");
    assert!(err.contains("line 3") && err.contains("time_s"), "{err}");
    // From memory too.
    assert!(LoadTrace::new("t", vec![-1e308, 1e308], vec![0.0, 0.0]).is_err());
}

#[test]
fn a_co_runner_whose_scaled_trace_is_not_a_duration_is_refused_not_a_panic() {
    let trace = LoadTrace::new("t", vec![0.0, 1e10], vec![0.0, 0.1]).unwrap();
    let params = CoRunnerParams {
        threads: 1,
        time_scale: 1e300,
        ..CoRunnerParams::default()
    };
    let err = CoRunner::start(&trace, &params).unwrap_err().to_string();
    assert!(err.contains("time_scale") && err.contains("`t`"), "{err}");
    let params = CoRunnerParams {
        threads: 1,
        max_duration_s: 1e300,
        ..CoRunnerParams::default()
    };
    let err = params.check().unwrap_err().to_string();
    assert!(err.contains("max_duration_s"), "{err}");
}

#[test]
fn a_device_file_given_as_a_trace_is_refused_at_once() {
    let started = std::time::Instant::now();
    let err = LoadTrace::from_file("/dev/zero").unwrap_err().to_string();
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn a_trace_with_a_byte_order_mark_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.csv");
    std::fs::write(&path, "\u{feff}time_s,co_runner_load\n0.0,0.1\n").unwrap();
    assert_eq!(LoadTrace::from_file(&path).unwrap().len(), 1);
}
