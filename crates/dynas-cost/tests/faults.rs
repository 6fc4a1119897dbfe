//! Tables and metrics at their limits (issue 32): contradictory or ambiguous columns, device
//! files, a byte-order mark, metrics of values whose squares overflow.

use dynas_cost::predictor::RegressionMetrics;
use dynas_cost::table::{duplicate_column, read_arch_targets};

const CELL: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

fn write(name: &str, text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn an_rmse_of_large_finite_errors_is_finite() {
    let actual = [1e200, 2e200, 3e200];
    let predicted = [0.5e200, 2.5e200, 3e200];
    let m = RegressionMetrics::compute(&actual, &predicted).unwrap();
    assert!(m.rmse.is_finite(), "{}", m.rmse);
    approx::assert_relative_eq!(m.rmse, (0.5f64 / 3.0).sqrt() * 1e200, max_relative = 1e-12);
    let small = RegressionMetrics::compute(&[1.0, 2.0], &[2.0, 2.0]).unwrap();
    approx::assert_relative_eq!(small.rmse, 0.5f64.sqrt(), max_relative = 1e-12);
}

#[test]
fn an_arch_str_that_contradicts_the_op_columns_is_refused() {
    let ops = CELL.parse::<dynas_cost::table::Nb201Cell>().unwrap().ops();
    let row = |ops: &[usize]| {
        ops.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let good = format!(
        "arch_str,op0,op1,op2,op3,op4,op5,t\n{CELL},{},1.5\n",
        row(&ops)
    );
    let (_d, path) = write("good.csv", good.as_bytes());
    assert_eq!(read_arch_targets(&path, "t").unwrap().cells.len(), 1);
    let mut other = ops;
    other[0] = (other[0] + 1) % 5;
    let bad = format!(
        "arch_str,op0,op1,op2,op3,op4,op5,t\n{CELL},{},1.5\n",
        row(&other)
    );
    let (_d, path) = write("bad.csv", bad.as_bytes());
    let err = read_arch_targets(&path, "t").unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("contradicts"),
        "{err}"
    );
}

#[test]
fn a_duplicated_column_is_refused_and_a_bom_is_read() {
    assert_eq!(
        duplicate_column(["a", "b", " a"]),
        Some(("a".to_string(), 1, 3))
    );
    assert_eq!(duplicate_column(["a", "b"]), None);
    let (_d, path) = write("dup.csv", format!("arch_str,t,t\n{CELL},1,2\n").as_bytes());
    let err = read_arch_targets(&path, "t").unwrap_err().to_string();
    assert!(err.contains("`t`") && err.contains("twice"), "{err}");
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(format!("arch_str,t\n{CELL},1\n").as_bytes());
    let (_d, path) = write("bom.csv", &bom);
    assert_eq!(read_arch_targets(&path, "t").unwrap().targets, vec![1.0]);
}

#[test]
fn a_device_file_is_refused_at_once() {
    let err = read_arch_targets("/dev/zero", "t").unwrap_err().to_string();
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let err = dynas_cost::lut::LayerLut::from_harmonic_file("/dev/urandom")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/dev/urandom"), "{err}");
}

#[test]
fn a_clock_sweep_with_a_duplicated_column_is_refused() {
    let (_d, path) = write(
        "sweep.csv",
        b"model,gpu_freq_hz,latency_ms,latency_ms\nvgg,1000,2.0,3.0\n",
    );
    let err = dynas_cost::dvfs::read_gpu_sweep(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("latency_ms") && err.contains("twice"), "{err}");
    let (_d, path) = write(
        "sweep.csv",
        b"\xef\xbb\xbfmodel,gpu_freq_hz,latency_ms\nvgg,1000,2.0\nvgg,2000,1.0\n",
    );
    assert_eq!(dynas_cost::dvfs::read_gpu_sweep(&path).unwrap().len(), 1);
}
