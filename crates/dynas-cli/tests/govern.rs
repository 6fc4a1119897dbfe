//! Integration tests of `dynas govern simulate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dynas::cost::OperatingPoint;
use dynas::dvfs::{Configuration, ConfigurationSet};

const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-dvfs/traces");

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dynas-govern-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Dynamic-OFA's published GPU levels on Jetson Xavier NX (top-1 %, ms at the highest
/// clocks), at three GPU clocks with latency inversely proportional to the clock and energy
/// = 3 W static x latency + 9 W x (f / f_max)^2 x latency (a plain DVFS shape, enough to
/// exercise the command).
fn write_configs(path: &Path) {
    let levels = [
        (74.2, 41.2),
        (75.0, 45.4),
        (76.1, 49.4),
        (77.5, 51.1),
        (78.3, 56.7),
        (79.0, 61.7),
    ];
    let clocks = [624_750_000u64, 905_250_000, 1_377_000_000];
    let mut configs = Vec::new();
    for (i, &(acc, ms)) in levels.iter().enumerate() {
        for &hz in &clocks {
            let r = hz as f64 / 1_377_000_000.0;
            let lat = ms / r;
            configs.push(Configuration {
                genotype: dynas::space::Genotype::new(vec![i]),
                label: format!("level{i}"),
                exits: vec![],
                point: OperatingPoint::new(None, Some(hz), Some(2_133_000_000))
                    .expect("positive clock"),
                accuracy: acc,
                latency_ms: lat,
                energy_mj: 3.0 * lat + 9.0 * r * r * lat,
            });
        }
    }
    ConfigurationSet::new(configs)
        .expect("valid set")
        .to_json_file(path)
        .expect("write configs");
}

fn dynas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynas"))
        .args(args)
        .output()
        .expect("run dynas")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn simulate_prints_the_summary_and_writes_json() {
    let s = Scratch::new("ok");
    let configs = s.path("configs.json");
    write_configs(&configs);
    let out = s.path("report.json");
    let trace = format!("{TRACES}/step.csv");
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        configs.to_str().expect("utf8"),
        "--trace",
        &trace,
        "--policy",
        "joint",
        "--target-ms",
        "90",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("trace `step`") && stdout.contains("joint"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(report["policy"], "joint");
    assert_eq!(report["windows"], 200);
    assert_eq!(report["inferences"], 2000);
    assert!(report["energy_mj"].as_f64().expect("energy") > 0.0);
    assert_eq!(report["timeline"].as_array().expect("timeline").len(), 200);
}

#[test]
fn all_policies_compare_and_joint_saves_energy_over_subnet_switching() {
    let s = Scratch::new("all");
    let configs = s.path("configs.json");
    write_configs(&configs);
    let out = s.path("all.json");
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        configs.to_str().expect("utf8"),
        "--trace",
        "builtin:periodic",
        "--policy",
        "all",
        "--target-ms",
        "90",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for p in ["static-max", "subnet-only", "dvfs-only", "joint"] {
        assert!(stdout.contains(p), "{stdout}");
    }
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(reports.len(), 4);
    let energy = |i: usize| reports[i]["energy_mj"].as_f64().expect("energy");
    assert!(
        energy(3) < energy(1),
        "joint {} vs subnet-only {}",
        energy(3),
        energy(1)
    );
}

#[test]
fn bad_inputs_are_reported_with_file_and_line() {
    let s = Scratch::new("bad");
    let configs = s.path("configs.json");
    write_configs(&configs);
    let configs = configs.to_str().expect("utf8");
    let trace = s.path("broken.csv");
    std::fs::write(&trace, "time_s,co_runner_load\n0.0,0.1\n0.1,oops\n").expect("write");
    let stderr = refused(&simulate_args(
        configs,
        trace.to_str().expect("utf8"),
        "joint",
        &[],
    ));
    assert!(
        stderr.contains("broken.csv") && stderr.contains("line 3"),
        "{stderr}"
    );

    let stderr = refused(&simulate_args(configs, "builtin:steady", "fastest", &[]));
    assert!(stderr.contains("unknown --policy `fastest`"), "{stderr}");

    let missing = s.path("missing.json");
    let stderr = refused(&simulate_args(
        missing.to_str().expect("utf8"),
        "builtin:steady",
        "joint",
        &[],
    ));
    assert!(stderr.contains("missing.json"), "{stderr}");

    let stderr = refused(&simulate_args(
        configs,
        "builtin:steady",
        "joint",
        &["--target-ms=-3"],
    ));
    assert!(stderr.contains("latency_target_ms"), "{stderr}");

    // A miss budget outside [0, 1) is refused, naming the field.
    let stderr = refused(&simulate_args(
        configs,
        "builtin:steady",
        "joint",
        &["--miss-budget", "1.5"],
    ));
    assert!(stderr.contains("miss_guard.miss_budget"), "{stderr}");
}

/// `govern simulate --configs C --trace T --policy P`, then `extra`.
fn simulate_args<'a>(
    configs: &'a str,
    trace: &'a str,
    policy: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "govern",
        "simulate",
        "--configs",
        configs,
        "--trace",
        trace,
        "--policy",
        policy,
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `dynas args`, checks that it failed, and returns its stderr.
fn refused(args: &[&str]) -> String {
    let o = dynas(args);
    let (_, stderr) = text(&o);
    assert!(!o.status.success(), "accepted: {args:?}");
    stderr
}

#[test]
fn the_miss_guard_runs_from_the_command_line() {
    let s = Scratch::new("guard");
    let configs = s.path("configs.json");
    write_configs(&configs);
    let o = dynas(&simulate_args(
        configs.to_str().expect("utf8"),
        "builtin:bursty",
        "joint",
        &[
            "--target-ms",
            "90",
            "--miss-budget",
            "0.01",
            "--miss-samples",
            "256",
        ],
    ));
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("joint"), "{stdout}");
}

#[test]
fn builtin_dynamic_ofa_table_runs_with_the_default_target() {
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        "builtin:dynamic-ofa-xavier",
        "--trace",
        "builtin:steady",
        "--policy",
        "subnet-only",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    // Default target: the most accurate level at the highest clocks (79.0 % at 61.7 ms).
    assert!(stdout.contains("target 61.70 ms"), "{stdout}");
    assert!(stdout.contains("subnet-only"), "{stdout}");
}
