//! Bad input on purpose: outputs that would destroy inputs, checkpoints that would be
//! overwritten or resumed with another seed, duplicate rows, undefined statistics and
//! unreachable constraints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);

fn dynas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynas"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run dynas")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first `rows` rows of the real NAS-Bench-201 table, copied into `dir`.
fn nb201_head(dir: &Path, rows: usize) -> PathBuf {
    let text = std::fs::read_to_string(NB201).expect("nb201_hw.csv");
    let path = dir.join("nb201_head.csv");
    let head: Vec<&str> = text.lines().take(rows + 1).collect();
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn search_args<'a>(csv: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "search",
        "table",
        "--csv",
        csv,
        "--minimize",
        "raspi4_latency",
        "--maximize",
        "acc_cifar100",
        "--budget",
        "40",
        "--out",
        out,
    ]
}

#[test]
fn search_refuses_an_output_that_is_an_input_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nb201_head(dir.path(), 300);
    let before = std::fs::read(&csv).unwrap();
    let o = dynas(&search_args(s(&csv), s(&csv)));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("destroy the input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    // The checkpoint as --out.
    let ckpt = dir.path().join("ckpt.json");
    let mut args = search_args(s(&csv), s(&ckpt));
    args.extend(["--checkpoint", s(&ckpt)]);
    let o = dynas(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--checkpoint"), "{}", stderr(&o));
}

#[test]
fn search_checks_every_output_before_writing_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nb201_head(dir.path(), 300);
    let out = dir.path().join("out.json");
    let bad_svg = dir.path().join("missing-dir").join("front.svg");
    let mut args = search_args(s(&csv), s(&out));
    args.extend(["--svg", s(&bad_svg)]);
    let o = dynas(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--svg"), "{}", stderr(&o));
    assert!(!out.exists(), "--out was written although --svg cannot be");
    // A plot needs two objectives: known before the search.
    let o = dynas(&[
        "search",
        "table",
        "--csv",
        s(&csv),
        "--minimize",
        "raspi4_latency",
        "--budget",
        "20",
        "--out",
        s(&out),
        "--svg",
        s(&dir.path().join("front.svg")),
    ]);
    assert!(!o.status.success());
    assert!(!out.exists());
}

#[test]
fn a_checkpoint_is_never_overwritten_or_resumed_with_another_seed() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nb201_head(dir.path(), 400);
    let ckpt = dir.path().join("ckpt.json");
    let first_out = dir.path().join("first.json");
    let mut first = search_args(s(&csv), s(&first_out));
    first.extend(["--seed", "7", "--checkpoint", s(&ckpt)]);
    let o = dynas(&first);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = std::fs::read(&ckpt).unwrap();
    // Again without --resume: refused, the checkpoint kept.
    let o = dynas(&first);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&ckpt).unwrap(), saved);
    // --resume with another seed: refused.
    let resumed_out = dir.path().join("resumed.json");
    let mut other_seed = search_args(s(&csv), s(&resumed_out));
    other_seed.extend(["--seed", "99", "--checkpoint", s(&ckpt), "--resume"]);
    let o = dynas(&other_seed);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("seed"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&ckpt).unwrap(), saved);
    // --resume without a seed: the checkpoint's seed is used and recorded.
    let mut resume = search_args(s(&csv), s(&resumed_out));
    resume.extend(["--checkpoint", s(&ckpt), "--resume"]);
    let o = dynas(&resume);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("seed: 7"), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&resumed_out).unwrap()).unwrap();
    assert_eq!(v["seed"], 7);
    assert_eq!(v["resumed"], true);
    // Genes are exported with their dimension names.
    assert_eq!(v["front"][0]["genes"][0]["dimension"], "op0");
}

#[test]
fn cost_fit_refuses_overwriting_its_input_and_duplicate_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nb201_head(dir.path(), 60);
    let before = std::fs::read(&csv).unwrap();
    let fit = |csv: &Path, predictions: &Path| {
        dynas(&[
            "cost",
            "fit",
            "--csv",
            s(csv),
            "--target",
            "raspi4_latency",
            "--train",
            "30",
            "--predictions",
            s(predictions),
        ])
    };
    let o = fit(&csv, &csv);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("destroy the input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    // The same architecture twice (a real row repeated).
    let text = String::from_utf8(before).unwrap();
    let repeated = dir.path().join("repeated.csv");
    let third = text.lines().nth(3).unwrap();
    std::fs::write(&repeated, format!("{text}{third}\n")).unwrap();
    let o = fit(&repeated, &dir.path().join("p.csv"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("appears in two rows"), "{}", stderr(&o));
}

#[test]
fn an_undefined_spearman_is_reported_as_undefined() {
    let dir = tempfile::tempdir().unwrap();
    // Real architectures with a constant target: no ranking exists.
    let text = std::fs::read_to_string(NB201).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let arch = header.split(',').position(|h| h == "arch_str").unwrap();
    let mut csv = String::from("arch_str,constant_ms\n");
    for line in lines.take(40) {
        let arch_str = line.split(',').nth(arch).unwrap();
        csv.push_str(&format!("{arch_str},5\n"));
    }
    let path = dir.path().join("constant.csv");
    std::fs::write(&path, csv).unwrap();
    let o = dynas(&[
        "cost",
        "fit",
        "--csv",
        s(&path),
        "--target",
        "constant_ms",
        "--train",
        "20",
        "--model",
        "ridge",
        "--predictions",
        s(&dir.path().join("p.csv")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Spearman: undefined"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("Spearman: 0.0000"));
}

#[test]
fn an_unreachable_accuracy_floor_makes_every_window_infeasible_for_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports.json");
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        "builtin:dynamic-ofa-xavier",
        "--trace",
        "builtin:bursty",
        "--policy",
        "all",
        "--accuracy-floor",
        "99",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reports: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for r in reports.as_array().unwrap() {
        assert_eq!(r["infeasible_windows"], r["windows"], "{}", r["policy"]);
    }
}

#[test]
fn govern_refuses_an_output_that_is_its_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs.json");
    std::fs::write(&configs, "{\"configurations\": []}").unwrap();
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        s(&configs),
        "--trace",
        "builtin:steady",
        "--policy",
        "joint",
        "--out",
        s(&configs),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("destroy the input"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&configs).unwrap(),
        "{\"configurations\": []}"
    );
}

#[test]
fn dvfs_fit_refuses_a_repeated_operating_point_of_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/dvfs/jetson_tx2_gpu_sweep.csv"
    );
    let text = std::fs::read_to_string(sweep).unwrap();
    let repeated = format!("{text}{}\n", text.lines().nth(2).unwrap());
    let csv = dir.path().join("sweep.csv");
    std::fs::write(&csv, repeated).unwrap();
    let args = |csv: &Path| {
        dynas(&[
            "cost",
            "dvfs-fit",
            "--csv",
            s(csv),
            "--group",
            "model",
            "--freq",
            "gpu_freq_hz",
            "--target",
            "latency_ms",
            "--train-points",
            "4",
            "--predictions",
            s(&dir.path().join("p.csv")),
        ])
    };
    let o = args(&csv);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already appears"), "{}", stderr(&o));
    // The real file itself has no repeats and fits.
    let o = args(Path::new(sweep));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `dynas serve` refuses, before loading anything, an output that is its supernet, an unknown
/// policy and an unknown trace, each naming the flag.
#[cfg(feature = "tch")]
#[test]
fn serve_checks_its_arguments_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let supernet = dir.path().join("supernet.safetensors");
    std::fs::write(&supernet, b"weights").unwrap();
    let family = dir.path().join("family");
    std::fs::create_dir(&family).unwrap();
    let (s, f) = (supernet.to_str().unwrap(), family.to_str().unwrap());
    let same = dynas(&["serve", "--supernet", s, "--family", f, "--out", s]);
    assert!(!same.status.success());
    assert!(stderr(&same).contains("--out"), "{}", stderr(&same));
    assert_eq!(std::fs::read(&supernet).unwrap(), b"weights");
    let out = dir.path().join("serve.json");
    let o = out.to_str().unwrap();
    let policy = dynas(&[
        "serve",
        "--supernet",
        s,
        "--family",
        f,
        "--out",
        o,
        "--policies",
        "fastest",
    ]);
    assert!(!policy.status.success());
    assert!(
        stderr(&policy).contains("--policies"),
        "{}",
        stderr(&policy)
    );
    let trace = dynas(&[
        "serve",
        "--supernet",
        s,
        "--family",
        f,
        "--out",
        o,
        "--traces",
        "nope",
    ]);
    assert!(!trace.status.success());
    assert!(
        stderr(&trace).contains("--traces `nope`"),
        "{}",
        stderr(&trace)
    );
    assert!(!out.exists());
}
