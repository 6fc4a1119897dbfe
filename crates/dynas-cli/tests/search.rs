//! `dynas search table` end to end on the real NAS-Bench-201 table.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dynas-cli-search");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn dynas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynas"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run dynas")
}

fn search(csv: &str, strategy: &str, budget: usize, seed: u64, out: &Path) -> Value {
    let output = dynas(&[
        "search",
        "table",
        "--csv",
        csv,
        "--minimize",
        "raspi4_latency",
        "--maximize",
        "acc_cifar100",
        "--budget",
        &budget.to_string(),
        "--seed",
        &seed.to_string(),
        "--strategy",
        strategy,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn front_points(v: &Value) -> Vec<(String, f64, f64)> {
    v["front"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["arch_str"].as_str().unwrap().to_string(),
                p["raspi4_latency"].as_f64().unwrap(),
                p["acc_cifar100"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_strategy_writes_a_consistent_front_and_evaluation_list() {
    for strategy in ["nsga2", "aging", "random"] {
        let out = scratch(&format!("front-{strategy}.json"));
        let v = search(NB201, strategy, 150, 4, &out);
        let evaluated: Vec<&str> = v["evaluated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(
            evaluated.len() <= 150 && evaluated.len() >= 100,
            "{strategy}"
        );
        let distinct: HashSet<&&str> = evaluated.iter().collect();
        assert_eq!(distinct.len(), evaluated.len(), "{strategy}: repeats");
        assert!(
            evaluated
                .iter()
                .all(|a| a.starts_with('|') && a.ends_with('|'))
        );
        let front = front_points(&v);
        assert!(!front.is_empty());
        for (arch, lat, acc) in &front {
            assert!(distinct.contains(&arch.as_str()), "{arch} not evaluated");
            // Mutually non-dominated (latency min, accuracy max).
            assert!(
                !front
                    .iter()
                    .any(|(_, l, a)| l <= lat && a >= acc && (l < lat || a > acc))
            );
        }
    }
}

#[test]
fn same_seed_same_output() {
    let a = search(NB201, "nsga2", 80, 9, &scratch("seed-a.json"));
    let b = search(NB201, "nsga2", 80, 9, &scratch("seed-b.json"));
    assert_eq!(a["evaluated"], b["evaluated"]);
    assert_eq!(a["front"], b["front"]);
}

#[test]
fn rows_with_missing_values_are_infeasible() {
    // A slice of the real table with the accuracy of its best rows blanked out.
    let text = std::fs::read_to_string(NB201).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let acc_col = header.split(',').position(|h| h == "acc_cifar100").unwrap();
    let mut blanked = HashSet::new();
    let mut out = vec![header.to_string()];
    for line in lines.take(400) {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if cells[acc_col].parse::<f64>().unwrap() > 70.0 {
            blanked.insert(cells[1].clone());
            cells[acc_col].clear();
        }
        out.push(cells.join(","));
    }
    assert!(!blanked.is_empty());
    let csv = scratch("missing.csv");
    std::fs::write(&csv, out.join("\n")).unwrap();
    let v = search(
        csv.to_str().unwrap(),
        "random",
        300,
        1,
        &scratch("missing.json"),
    );
    assert!(v["infeasible_evaluated"].as_u64().unwrap() > 0);
    for (arch, _, acc) in front_points(&v) {
        assert!(
            !blanked.contains(&arch),
            "{arch} has no accuracy but is on the front"
        );
        assert!(acc <= 70.0);
    }
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let out = scratch("bad.json");
    let o = dynas(&[
        "search",
        "table",
        "--csv",
        NB201,
        "--minimize",
        "no_such_column",
        "--budget",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no_such_column") && err.contains("nb201_hw.csv"),
        "{err}"
    );

    let o = dynas(&[
        "search",
        "table",
        "--csv",
        "/nonexistent/t.csv",
        "--minimize",
        "x",
        "--budget",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/t.csv"));

    let o = dynas(&[
        "search",
        "table",
        "--csv",
        NB201,
        "--minimize",
        "raspi4_latency",
        "--budget",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("budget"));
}

#[test]
fn checkpoint_and_resume_from_the_command_line() {
    let ckpt = scratch("cli.ckpt.json");
    let _ = std::fs::remove_file(&ckpt);
    let full = search(NB201, "nsga2", 120, 2, &scratch("cli-full.json"));
    let base = [
        "search",
        "table",
        "--csv",
        NB201,
        "--minimize",
        "raspi4_latency",
        "--maximize",
        "acc_cifar100",
        "--seed",
        "2",
        "--checkpoint",
        ckpt.to_str().unwrap(),
    ];
    let first_out = scratch("cli-first.json");
    let mut first: Vec<&str> = base.to_vec();
    first.extend(["--budget", "50", "--out", first_out.to_str().unwrap()]);
    assert!(dynas(&first).status.success());
    let resumed_out = scratch("cli-resumed.json");
    let mut second: Vec<&str> = base.to_vec();
    second.extend([
        "--budget",
        "120",
        "--resume",
        "--out",
        resumed_out.to_str().unwrap(),
    ]);
    let o = dynas(&second);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Extra outputs: the front as CSV and an SVG plot over the table's true front.
    let (csv_out, svg_out) = (scratch("cli-front.csv"), scratch("cli-front.svg"));
    let mut extra: Vec<&str> = base.to_vec();
    let extra_json = scratch("cli-extra.json");
    extra.extend([
        "--budget",
        "30",
        "--out",
        extra_json.to_str().unwrap(),
        "--front-csv",
        csv_out.to_str().unwrap(),
        "--svg",
        svg_out.to_str().unwrap(),
    ]);
    let extra: Vec<&str> = extra
        .into_iter()
        .filter(|a| *a != "--checkpoint" && *a != ckpt.to_str().unwrap())
        .collect();
    assert!(dynas(&extra).status.success());
    let csv_text = std::fs::read_to_string(&csv_out).unwrap();
    assert!(csv_text.starts_with("genotype,label,raspi4_latency,acc_cifar100"));
    let svg = std::fs::read_to_string(&svg_out).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains("<circle"));
    // Both axes are named after their objective.
    assert!(svg.contains("raspi4_latency (minimize)") && svg.contains("acc_cifar100 (maximize)"));
    let resumed: Value =
        serde_json::from_str(&std::fs::read_to_string(&resumed_out).unwrap()).unwrap();
    // The first run stopped at 50 evaluations mid-generation; the resumed one continues that
    // run, so its first 50 evaluations are those of the uninterrupted run.
    assert_eq!(
        resumed["evaluated"].as_array().unwrap()[..50],
        full["evaluated"].as_array().unwrap()[..50]
    );
    assert_eq!(resumed["evaluated"].as_array().unwrap().len(), 120);
}

/// A search killed (SIGKILL) while it checkpoints every generation, at several moments, resumes
/// to exactly the uninterrupted result; no temporary or journal is left once it finishes, and a
/// second run on a checkpoint in use is refused.
#[test]
fn a_search_killed_mid_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let full = search(NB201, "nsga2", 4000, 5, &dir.path().join("full.json"));
    for delay_ms in [0u64, 20, 80] {
        let ckpt = dir.path().join(format!("killed-{delay_ms}.ckpt.json"));
        let out = dir.path().join(format!("killed-{delay_ms}.json"));
        let args = |resume: bool| {
            let mut a: Vec<String> = [
                "search",
                "table",
                "--csv",
                NB201,
                "--minimize",
                "raspi4_latency",
                "--maximize",
                "acc_cifar100",
                "--budget",
                "4000",
                "--strategy",
                "nsga2",
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if resume {
                a.push("--resume".into());
            } else {
                a.extend(["--seed".into(), "5".into()]);
            }
            a
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_dynas"))
            .args(args(false))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill once the first checkpoint exists (or the run ended), after `delay_ms`.
        let started = std::time::Instant::now();
        while !ckpt.exists() && started.elapsed() < std::time::Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let o = Command::new(env!("CARGO_BIN_EXE_dynas"))
            .args(args(true))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let resumed: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(
            resumed["evaluated"], full["evaluated"],
            "killed after {delay_ms} ms"
        );
        assert_eq!(
            resumed["front"], full["front"],
            "killed after {delay_ms} ms"
        );
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&format!("killed-{delay_ms}.ckpt")))
            .collect();
        assert_eq!(left, [format!("killed-{delay_ms}.ckpt.json")], "{left:?}");
    }
}
