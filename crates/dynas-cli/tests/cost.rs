//! `dynas cost fit` and `dynas cost dvfs-fit` end to end.

use std::path::PathBuf;
use std::process::Command;

const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);
const JETSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/dvfs/jetson_operating_points.json"
);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dynas-cli-cost-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dynas(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dynas"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fit_predicts_every_held_out_row_and_skips_bad_targets() {
    let dir = scratch("fit");
    // A slice of the real table with one empty and one non-numeric target.
    let text = std::fs::read_to_string(NB201).unwrap();
    let mut lines: Vec<String> = text.lines().take(1 + 600).map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "eyeriss_latency").unwrap();
    for (row, value) in [(5usize, ""), (9, "n/a")] {
        let mut cells: Vec<String> = lines[row].split(',').map(str::to_string).collect();
        cells[col] = value.to_string();
        lines[row] = cells.join(",");
    }
    let csv = dir.join("slice.csv");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let preds = dir.join("preds.csv");
    let (ok, stdout, stderr) = dynas(&[
        "cost",
        "fit",
        "--csv",
        csv.to_str().unwrap(),
        "--target",
        "eyeriss_latency",
        "--train",
        "150",
        "--seed",
        "3",
        "--model",
        "ridge",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("598 used, 2 skipped"), "{stdout}");
    let within: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("within +-10 %: "))
        .and_then(|v| v.trim_end_matches(" %").parse().ok())
        .unwrap();
    assert!(within > 99.0, "{stdout}");
    let mut r = csv::Reader::from_path(&preds).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["arch_str", "actual", "predicted"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 598 - 150);
    let (a, p): (f64, f64) = (rows[0][1].parse().unwrap(), rows[0][2].parse().unwrap());
    assert!(((a - p) / a).abs() < 0.01, "{a} vs {p}");
}

#[test]
fn fit_reports_a_missing_column_and_an_unreadable_file() {
    let dir = scratch("fit-errors");
    let preds = dir.join("p.csv");
    let (ok, _, stderr) = dynas(&[
        "cost",
        "fit",
        "--csv",
        NB201,
        "--target",
        "no_such_column",
        "--train",
        "10",
        "--seed",
        "0",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("no_such_column") && stderr.contains("nb201_hw.csv"),
        "{stderr}"
    );
    let (ok, _, stderr) = dynas(&[
        "cost",
        "fit",
        "--csv",
        "/nonexistent/x.csv",
        "--target",
        "a",
        "--train",
        "10",
        "--seed",
        "0",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("/nonexistent/x.csv"), "{stderr}");
}

/// Synthetic DVFS measurements (documented as such: no per-operating-point latency is
/// shipped): latency = a + b / f_gpu + c / f_emc with ±2 % deterministic noise, on the
/// Jetson AGX Xavier GPU x EMC operating points, for two models.
fn synthetic_dvfs_csv(path: &std::path::Path) {
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(JETSON).unwrap()).unwrap();
    let gpu: Vec<f64> = table["jetson_agx_xavier"]["gpu_hz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() / 1e6)
        .collect();
    let emc: Vec<f64> = table["jetson_agx_xavier"]["emc_hz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() / 1e6)
        .collect();
    let mut text = String::from("model,gpu_mhz,emc_mhz,latency_ms\n");
    let mut k = 0u32;
    for (name, a, b, c) in [("a0", 2.0, 9000.0, 3000.0), ("b2", 1.0, 20000.0, 1500.0)] {
        for &g in &gpu {
            for &m in &emc {
                k += 1;
                let noise = 1.0 + 0.02 * (((k * 7919) % 101) as f64 / 50.0 - 1.0);
                text.push_str(&format!("{name},{g},{m},{}\n", (a + b / g + c / m) * noise));
            }
        }
    }
    text.push_str("a0,1377,2133,\n");
    text.push_str("a0,1377,2133,oops\n");
    std::fs::write(path, text).unwrap();
}

#[test]
fn dvfs_fit_predicts_held_out_points_per_group() {
    let dir = scratch("dvfs");
    let csv = dir.join("dvfs.csv");
    synthetic_dvfs_csv(&csv);
    let preds = dir.join("preds.csv");
    let (ok, stdout, stderr) = dynas(&[
        "cost",
        "dvfs-fit",
        "--csv",
        csv.to_str().unwrap(),
        "--group",
        "model",
        "--freq",
        "gpu_mhz,emc_mhz",
        "--target",
        "latency_ms",
        "--train-points",
        "8",
        "--seed",
        "1",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("skipped rows: 2"), "{stdout}");
    let mape: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MAPE: "))
        .and_then(|v| v.trim_end_matches(" %").parse().ok())
        .unwrap();
    // Noise is ±2 %, so a good fit has a MAPE near 1 %.
    assert!(mape < 2.0, "{stdout}");
    let mut r = csv::Reader::from_path(&preds).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["model", "gpu_mhz", "emc_mhz", "actual", "predicted"]
    );
    assert_eq!(r.records().count(), 2 * (14 * 9 - 8));

    let (ok, _, stderr) = dynas(&[
        "cost",
        "dvfs-fit",
        "--csv",
        csv.to_str().unwrap(),
        "--group",
        "model",
        "--freq",
        "cpu_mhz",
        "--target",
        "latency_ms",
        "--train-points",
        "4",
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("cpu_mhz"), "{stderr}");
}
