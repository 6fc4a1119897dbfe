//! Faults and bad input (issue 32): a full disk, concurrent runs on one output, device files
//! given as inputs, outputs that would overwrite an input's side file, contradictory or
//! ambiguous tables, absurd values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dynas::cost::OperatingPoint;
use dynas::dvfs::{Configuration, ConfigurationSet};
use serde_json::Value;

const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);
const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-dvfs/traces");

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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The first `rows` rows of the real NAS-Bench-201 table, copied into `dir`.
fn nb201_head(dir: &Path, rows: usize) -> PathBuf {
    let text = std::fs::read_to_string(NB201).expect("nb201_hw.csv");
    let path = dir.join("nb201_head.csv");
    let head: Vec<&str> = text.lines().take(rows + 1).collect();
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path
}

fn search<'a>(csv: &'a str, out: &'a str, budget: &'a str) -> Vec<&'a str> {
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
        budget,
        "--out",
        out,
    ]
}

/// The names in `dir` (temporary files included).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A tmpfs of `size` mounted at `dir` (unmounted on drop), or `None` where mounting is not
/// allowed (not root, no tmpfs).
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                s(dir),
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

#[test]
fn a_full_disk_fails_the_run_and_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nb201_head(dir.path(), 2000);
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let Some(_mounted) = TinyDisk::mount(&disk, "8k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    // Two 4 KiB pages: the result of a 400-architecture search (over 20 KB) cannot fit.
    let out = disk.join("out.json");
    let o = dynas(&search(s(&csv), s(&out), "400"));
    assert!(!o.status.success(), "a failed write must fail the run");
    assert!(
        stderr(&o).contains("--out") && stderr(&o).contains("out.json"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        names(&disk),
        Vec::<String>::new(),
        "no partial, empty or temporary file"
    );
    // The same for the predictions of `cost fit`.
    let predictions = disk.join("p.csv");
    let o = dynas(&[
        "cost",
        "fit",
        "--csv",
        s(&csv),
        "--target",
        "raspi4_latency",
        "--train",
        "100",
        "--predictions",
        s(&predictions),
    ]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--predictions"), "{}", stderr(&o));
    assert_eq!(names(&disk), Vec::<String>::new());
}

#[test]
fn concurrent_runs_on_one_output_leave_one_whole_result() {
    let dir = tempfile::tempdir().unwrap();
    let csv = nb201_head(dir.path(), 2000);
    let out = dir.path().join("out.json");
    // Started together, not one after the other.
    let spawned: Vec<_> = (0..4)
        .map(|seed| {
            let seed = seed.to_string();
            let mut args = search(s(&csv), s(&out), "300");
            args.extend(["--seed", &seed]);
            Command::new(env!("CARGO_BIN_EXE_dynas"))
                .args(&args)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in spawned {
        assert!(child.wait().unwrap().success());
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap())
        .expect("the output is one whole JSON document");
    assert_eq!(v["budget"], 300);
    assert_eq!(names(dir.path()), vec!["nb201_head.csv", "out.json"]);
}

#[test]
fn a_device_file_given_as_an_input_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = dir.path().join("out.json");
    let o = dynas(&search("/dev/zero", s(&out), "10"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/dev/zero") && stderr(&o).contains("not a regular file"),
        "{}",
        stderr(&o)
    );
    let predictions = dir.path().join("p.csv");
    for args in [
        vec!["cost", "fit", "--target", "x", "--train", "2"],
        vec![
            "cost",
            "dvfs-fit",
            "--group",
            "g",
            "--freq",
            "f",
            "--target",
            "t",
            "--train-points",
            "3",
        ],
    ] {
        let mut args = args;
        args.extend(["--csv", "/dev/urandom", "--predictions", s(&predictions)]);
        let o = dynas(&args);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("/dev/urandom") && stderr(&o).contains("not a regular file"),
            "{}",
            stderr(&o)
        );
    }
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        "builtin:dynamic-ofa-xavier",
        "--trace",
        "/dev/zero",
        "--policy",
        "joint",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/dev/zero"), "{}", stderr(&o));
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        "/dev/zero",
        "--trace",
        "builtin:step",
        "--policy",
        "joint",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/dev/zero") && stderr(&o).contains("not a regular file"),
        "{}",
        stderr(&o)
    );
    assert!(started.elapsed().as_secs() < 60, "read forever");
}

#[test]
fn a_table_whose_arch_str_contradicts_its_op_columns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(NB201).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    let arch = cols.iter().position(|h| *h == "arch_str").unwrap();
    assert!(cols.contains(&"op0"), "the table has op columns");
    let rows: Vec<&str> = lines.take(60).collect();
    // Row 2 keeps its op columns but takes row 3's arch_str.
    let mut fields: Vec<&str> = rows[1].split(',').collect();
    let other = rows[2].split(',').nth(arch).unwrap();
    fields[arch] = other;
    let mut body = vec![header.to_string(), rows[0].to_string(), fields.join(",")];
    body.extend(rows[2..].iter().map(|r| r.to_string()));
    let csv = dir.path().join("contradicts.csv");
    std::fs::write(&csv, body.join("\n") + "\n").unwrap();
    let out = dir.path().join("out.json");
    let o = dynas(&search(s(&csv), s(&out), "20"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("contradicts") && stderr(&o).contains("line 3"),
        "{}",
        stderr(&o)
    );
    let o = dynas(&[
        "cost",
        "fit",
        "--csv",
        s(&csv),
        "--target",
        "raspi4_latency",
        "--train",
        "20",
        "--predictions",
        s(&dir.path().join("p.csv")),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("contradicts") && stderr(&o).contains("line 3"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn a_duplicated_column_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let head = nb201_head(dir.path(), 60);
    let text = std::fs::read_to_string(&head).unwrap();
    let csv = dir.path().join("dup.csv");
    // A second `raspi4_latency` column (a bad join).
    let doubled: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},raspi4_latency")
            } else {
                format!("{l},1")
            }
        })
        .collect();
    std::fs::write(&csv, doubled.join("\n") + "\n").unwrap();
    let out = dir.path().join("out.json");
    let o = dynas(&search(s(&csv), s(&out), "20"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("raspi4_latency") && stderr(&o).contains("twice"),
        "{}",
        stderr(&o)
    );
    let o = dynas(&[
        "cost",
        "fit",
        "--csv",
        s(&csv),
        "--target",
        "raspi4_latency",
        "--train",
        "20",
        "--predictions",
        s(&dir.path().join("p.csv")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("twice"), "{}", stderr(&o));
    let dvfs = dir.path().join("dvfs.csv");
    std::fs::write(&dvfs, "g,f,t,t\na,1,2,3\n").unwrap();
    let o = dynas(&[
        "cost",
        "dvfs-fit",
        "--csv",
        s(&dvfs),
        "--group",
        "g",
        "--freq",
        "f",
        "--target",
        "t",
        "--train-points",
        "3",
        "--predictions",
        s(&dir.path().join("q.csv")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("twice"), "{}", stderr(&o));
}

#[test]
fn a_table_with_a_byte_order_mark_reads() {
    let dir = tempfile::tempdir().unwrap();
    let head = nb201_head(dir.path(), 100);
    let csv = dir.path().join("bom.csv");
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(std::fs::read(&head).unwrap());
    std::fs::write(&csv, bytes).unwrap();
    let o = dynas(&search(s(&csv), s(&dir.path().join("out.json")), "20"));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_absurd_latency_is_not_taken_as_the_default_target() {
    let dir = tempfile::tempdir().unwrap();
    let configs = dir.path().join("configs.json");
    let point = |hz| OperatingPoint::new(None, Some(hz), None).unwrap();
    let config = |i: usize, acc: f64, ms: f64, hz| Configuration {
        genotype: dynas::space::Genotype::new(vec![i]),
        label: format!("c{i}"),
        exits: vec![],
        point: point(hz),
        accuracy: acc,
        latency_ms: ms,
        energy_mj: ms,
    };
    // The most accurate configuration at the highest clock says 1e12 ms (a unit mistake).
    ConfigurationSet::new(vec![
        config(0, 70.0, 10.0, 1_000_000_000),
        config(1, 75.0, 1e12, 1_000_000_000),
        config(0, 70.0, 20.0, 500_000_000),
    ])
    .unwrap()
    .to_json_file(&configs)
    .unwrap();
    let trace = format!("{TRACES}/step.csv");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "govern",
            "simulate",
            "--configs",
            s(&configs),
            "--trace",
            &trace,
            "--policy",
            "joint",
        ];
        args.extend(extra);
        dynas(&args)
    };
    let o = run(&[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--target-ms") && stderr(&o).contains("c1"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--target-ms", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn govern_refuses_an_output_that_is_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    std::fs::copy(format!("{TRACES}/step.csv"), &trace).unwrap();
    let before = std::fs::read(&trace).unwrap();
    let o = dynas(&[
        "govern",
        "simulate",
        "--configs",
        "builtin:dynamic-ofa-xavier",
        "--trace",
        s(&trace),
        "--policy",
        "joint",
        "--out",
        s(&trace),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("destroy the input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&trace).unwrap(), before);
}

#[test]
fn an_overflowing_rmse_is_not_printed_as_inf() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(NB201).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let arch = header.split(',').position(|h| h == "arch_str").unwrap();
    let mut csv = String::from("arch_str,huge\n");
    for (i, line) in lines.take(60).enumerate() {
        let arch_str = line.split(',').nth(arch).unwrap();
        csv.push_str(&format!("{arch_str},{}e300\n", 1 + i % 7));
    }
    let path = dir.path().join("huge.csv");
    std::fs::write(&path, csv).unwrap();
    let o = dynas(&[
        "cost",
        "fit",
        "--csv",
        s(&path),
        "--target",
        "huge",
        "--train",
        "40",
        "--model",
        "ridge",
        "--predictions",
        s(&dir.path().join("p.csv")),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("RMSE: inf"), "{out}");
    if o.status.success() {
        assert!(out.contains("RMSE: "), "{out}");
    } else {
        assert!(stderr(&o).contains("not a finite number"), "{}", stderr(&o));
    }
}

/// Fashion-MNIST-shaped IDX files in `dir`: `n` train and `n` test images of `side` x `side`
/// pixels, every pixel `pixel(i)` for image `i`, labels `i % 10`.
#[cfg(feature = "tch")]
fn idx_dir(dir: &Path, n: u32, side: u32, pixel: impl Fn(u32) -> u8) {
    idx_dir_labelled(dir, n, side, pixel, |i| (i % 10) as u8);
}

/// [`idx_dir`] with labels `label(i)`.
#[cfg(feature = "tch")]
fn idx_dir_labelled(
    dir: &Path,
    n: u32,
    side: u32,
    pixel: impl Fn(u32) -> u8,
    label: impl Fn(u32) -> u8,
) {
    std::fs::create_dir_all(dir).unwrap();
    for split in ["train", "t10k"] {
        let mut images = vec![0u8, 0, 8, 3];
        for d in [n, side, side] {
            images.extend(d.to_be_bytes());
        }
        for i in 0..n {
            images.extend(std::iter::repeat_n(pixel(i), (side * side) as usize));
        }
        let mut labels = vec![0u8, 0, 8, 1];
        labels.extend(n.to_be_bytes());
        labels.extend((0..n).map(&label));
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
    }
}

#[cfg(feature = "tch")]
#[test]
fn gos_refuses_outputs_over_the_model_and_its_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let split = dir.path().join("m.safetensors.split.json");
    std::fs::write(&model, "weights").unwrap();
    std::fs::write(&split, "{}").unwrap();
    let out_model = dir.path().join("a.safetensors");
    let report = dir.path().join("r.json");
    let gos = |extra: &[&str]| {
        let mut args = vec!["gos", "--model", s(&model)];
        args.extend(extra);
        dynas(&args)
    };
    // --report over the model's split record, --save-lut over the model.
    for (flag, target, side) in [
        ("--report", &split, "split record"),
        ("--save-lut", &model, "--model"),
    ] {
        let mut extra = vec!["--out-model", s(&out_model)];
        if flag == "--report" {
            extra.extend(["--report", s(target)]);
        } else {
            extra.extend(["--report", s(&report), flag, s(target)]);
        }
        let o = gos(&extra);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(
            e.contains(flag) && e.contains(side) && e.contains("destroy"),
            "{e}"
        );
    }
    assert_eq!(std::fs::read_to_string(&split).unwrap(), "{}");
    assert_eq!(std::fs::read_to_string(&model).unwrap(), "weights");
    // The report where --out-model's description goes.
    let description = dir.path().join("a.safetensors.json");
    let o = gos(&["--out-model", s(&out_model), "--report", s(&description)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("its description"), "{}", stderr(&o));
    // Sizes: threads beyond i32, no training images.
    for (extra, needle) in [
        (vec!["--threads", "3000000000"], "--threads"),
        (vec!["--train-images", "0"], "--train-images"),
    ] {
        let mut args = vec!["--out-model", s(&out_model), "--report", s(&report)];
        args.extend(extra);
        let o = gos(&args);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    assert!(!out_model.exists() && !report.exists());
}

#[cfg(feature = "tch")]
#[test]
fn hadas_names_the_flag_and_the_bound_of_an_out_of_range_size() {
    let dir = tempfile::tempdir().unwrap();
    let supernet = dir.path().join("s.safetensors");
    std::fs::write(&supernet, "w").unwrap();
    let out = dir.path().join("out");
    for (flag, value) in [
        ("--outer-generations", "18446744073709551615"),
        ("--outer-population", "1000000000000"),
        ("--inner-population", "1000000000000"),
        ("--inner-generations", "1000000000000"),
    ] {
        let o = dynas(&[
            "hadas",
            "--supernet",
            s(&supernet),
            "--out",
            s(&out),
            "--no-progress",
            flag,
            value,
        ]);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(e.contains(flag) && e.contains("..="), "{e}");
        assert!(!e.contains("panicked") && !e.contains("at least 1"), "{e}");
    }
}

#[cfg(feature = "tch")]
#[test]
fn hadas_refuses_images_of_another_size_and_warns_about_constant_ones() {
    let dir = tempfile::tempdir().unwrap();
    let supernet = dir.path().join("s.safetensors");
    std::fs::write(&supernet, "w").unwrap();
    let data = dir.path().join("tiny");
    idx_dir(&data, 20, 1, |i| (i * 10) as u8);
    let hadas = |data: &Path| {
        dynas(&[
            "hadas",
            "--supernet",
            s(&supernet),
            "--data",
            s(data),
            "--validation",
            "4",
            "--out",
            s(&dir.path().join("out")),
            "--no-progress",
        ])
    };
    let o = hadas(&data);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("1 x 1 x 1") && e.contains("1 x 28 x 28"), "{e}");
    // Constant images of the right size: warned about (the dummy supernet then fails).
    let flat = dir.path().join("flat");
    idx_dir(&flat, 20, 28, |_| 7);
    let o = hadas(&flat);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("same value in every pixel"),
        "{}",
        stderr(&o)
    );
    // An empty test split is refused, not a panic later.
    let empty = dir.path().join("empty");
    idx_dir(&empty, 20, 28, |i| i as u8);
    idx_dir(&dir.path().join("none"), 0, 28, |_| 0);
    for kind in ["images-idx3-ubyte", "labels-idx1-ubyte"] {
        std::fs::copy(
            dir.path().join("none").join(format!("t10k-{kind}")),
            empty.join(format!("t10k-{kind}")),
        )
        .unwrap();
    }
    let o = hadas(&empty);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no images") || stderr(&o).contains("empty"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// A small GOS model of 8 x 8 one-channel images, trained on `data` (normalised over all of
/// it), saved in `dir`.
#[cfg(feature = "tch")]
fn small_gos_model(dir: &Path, data: &dynas::supernet::Dataset) -> PathBuf {
    use dynas::gos::model::{GosModel, TrainSettings, train};
    use dynas::gos::search::GosPlan;
    use dynas::space::{Activation, Layer, Network, PoolKind, TensorShape};
    let input = TensorShape::new(1, 8, 8);
    let c1 = Layer::conv("c1", input, 4, 3, 1, Activation::Relu);
    let c2 = Layer::conv("c2", c1.output(), 6, 3, 1, Activation::Relu);
    let p = Layer::pool("p", PoolKind::Max, c2.output(), 2, 2);
    let g = Layer::global_avg_pool("gap", p.output());
    let fc = Layer::linear("fc", 6, 10);
    let net = Network::new(input, vec![c1, c2, p, g, fc]);
    dynas::supernet::tch::manual_seed(3);
    let mut model =
        GosModel::new(net, GosPlan::default(), dynas::supernet::tch::Device::Cpu).unwrap();
    let settings = TrainSettings {
        epochs: 30,
        batch: 16,
        learning_rate: 0.05,
        ..TrainSettings::default()
    };
    train(
        &mut model,
        None,
        data,
        &data.channel_stats(),
        &settings.check().unwrap(),
    )
    .unwrap();
    let path = dir.join("m.safetensors");
    model.save(&path).unwrap();
    path
}

#[cfg(feature = "tch")]
#[test]
fn gos_normalises_from_a_fixed_split_and_writes_no_model_that_missed_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    // The class is the brightness, in blocks by index: a prefix of the training images (all
    // of the darkest class) has other statistics than the whole split.
    let data = dir.path().join("data");
    let label = |i: u32| (i / 12) as u8;
    idx_dir_labelled(&data, 120, 8, |i| 25 * label(i) + 5, label);
    let train = dynas::supernet::Dataset::mnist_dir(&data, dynas::supernet::Split::Train).unwrap();
    let model = small_gos_model(dir.path(), &train);
    let run = |train_images: &str, tag: &str| {
        let out_model = dir.path().join(format!("a{tag}.safetensors"));
        let report = dir.path().join(format!("r{tag}.json"));
        let o = dynas(&[
            "gos",
            "--model",
            s(&model),
            "--data",
            s(&data),
            "--latency",
            "macs:1000000",
            "--accuracy-budget",
            "0",
            "--train-images",
            train_images,
            "--validation",
            "30",
            "--fine-tune-epochs",
            "1",
            "--max-attempts",
            "1",
            "--evaluations",
            "20",
            "--threads",
            "1",
            "--out-model",
            s(&out_model),
            "--report",
            s(&report),
        ]);
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(&report)
                .unwrap_or_else(|e| panic!("no report ({e}): {}", stderr(&o))),
        )
        .unwrap();
        // A model is written only within the budget, and a miss fails the run.
        let within = v["within_budget"].as_bool().unwrap();
        assert_eq!(o.status.success(), within, "{}", stderr(&o));
        assert_eq!(out_model.exists(), within);
        if !within {
            assert!(
                stderr(&o).contains("--accuracy-budget") && stderr(&o).contains("no model"),
                "{}",
                stderr(&o)
            );
            assert!(v["adapted_model"].is_null());
        }
        v
    };
    let few = run("10", "few");
    let all = run("80", "all");
    assert_eq!(few["normalization"], all["normalization"]);
    assert_eq!(few["test_top1"]["original"], all["test_top1"]["original"]);
}

#[cfg(feature = "tch")]
#[test]
fn serve_refuses_an_output_over_a_trace_or_the_bundle_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let supernet = dir.path().join("s.safetensors");
    std::fs::write(&supernet, "w").unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let deployment = bundle.join("deployment.json");
    let bn = bundle.join("bn_store.safetensors");
    std::fs::write(&deployment, "{}").unwrap();
    std::fs::write(&bn, "bn").unwrap();
    let trace = dir.path().join("load.csv");
    std::fs::copy(format!("{TRACES}/step.csv"), &trace).unwrap();
    let before = std::fs::read(&trace).unwrap();
    for (out, needle) in [(&trace, "--traces"), (&bn, "batch-norm store")] {
        let o = dynas(&[
            "serve",
            "--supernet",
            s(&supernet),
            "--deployment",
            s(&deployment),
            "--traces",
            s(&trace),
            "--out",
            s(out),
        ]);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(e.contains("destroy the input") && e.contains(needle), "{e}");
    }
    assert_eq!(std::fs::read(&trace).unwrap(), before);
    assert_eq!(std::fs::read(&bn).unwrap(), b"bn");
}

#[cfg(feature = "tch")]
#[test]
fn hadas_refuses_outputs_over_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // The supernet where the report goes.
    let supernet = out.join("report.json");
    std::fs::write(&supernet, "w").unwrap();
    let o = dynas(&[
        "hadas",
        "--supernet",
        s(&supernet),
        "--out",
        s(&out),
        "--no-progress",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("destroy the input") && stderr(&o).contains("report.json"),
        "{}",
        stderr(&o)
    );
    // The checkpoint over a data file.
    let data = dir.path().join("data");
    idx_dir(&data, 4, 28, |i| i as u8);
    let other = dir.path().join("s.safetensors");
    std::fs::write(&other, "w").unwrap();
    let images = data.join("train-images-idx3-ubyte");
    let o = dynas(&[
        "hadas",
        "--supernet",
        s(&other),
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--checkpoint",
        s(&images),
        "--no-progress",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--checkpoint") && stderr(&o).contains("--data"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&supernet).unwrap(), "w");
}
