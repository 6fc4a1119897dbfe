//! Fuzz targets for the files `dynas-dvfs` reads: configuration tables (JSON), load traces
//! (CSV), sysfs clock files (cpufreq, devfreq, EMC, a DLA clock domain), power-sensor files
//! (INA3221 hwmon, RAPL) and the `/proc` files the co-runner load probe reads. Seeds are the shipped traces, the Dynamic-OFA table and a sysfs tree with the
//! published Jetson AGX Xavier clocks; see `fuzz_support` for the mutations and
//! `DYNAS_FUZZ_CASES`.

#[path = "../../dynas-search/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::Path;
use std::sync::OnceLock;

use dynas_cost::{ClockDomain, DomainName};
use dynas_dvfs::corunner::{parse_pid_stat_ticks, parse_proc_stat};
use dynas_dvfs::{
    ConfigurationSet, DeviceProfile, DomainInterface, FrequencyControl, Ina3221, LoadTrace,
    PowerSensor, Rapl, SysfsFrequencyControl, SysfsLayout,
};
use fuzz_support::{config, edits, mutate, scratch_file};
use proptest::prelude::*;

const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/traces");

/// The GPU clocks of the Jetson AGX Xavier table (Hz), as its devfreq node lists them.
const XAVIER_GPU: &str = "114750000 216750000 318750000 420750000 522750000 624750000 \
                          675750000 828750000 905250000 1032750000 1198500000 1236750000 \
                          1338750000 1377000000\n";

/// (relative path, content) of a Jetson AGX Xavier clock tree.
fn xavier_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for p in ["policy0", "policy4"] {
        let base = format!("sys/devices/system/cpu/cpufreq/{p}");
        for (name, text) in [
            ("scaling_available_frequencies", "115200 1190400 2265600\n"),
            ("scaling_governor", "schedutil\n"),
            ("scaling_min_freq", "115200\n"),
            ("scaling_max_freq", "2265600\n"),
            ("scaling_cur_freq", "1190400\n"),
        ] {
            files.push((format!("{base}/{name}"), text.to_string()));
        }
    }
    let gpu = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b";
    for (name, text) in [
        ("available_frequencies", XAVIER_GPU),
        ("min_freq", "114750000\n"),
        ("max_freq", "1377000000\n"),
        ("cur_freq", "624750000\n"),
    ] {
        files.push((format!("{gpu}/{name}"), text.to_string()));
    }
    let emc = "sys/kernel/debug/bpmp/debug/clk/emc";
    files.push((format!("{emc}/rate"), "2133000000\n".to_string()));
    files.push((format!("{emc}/mrq_rate_locked"), "0\n".to_string()));
    // The first DLA's BPMP clock, a named clock domain.
    files.push((format!("{DLA}/rate"), "1395200000\n".to_string()));
    files.push((format!("{DLA}/mrq_rate_locked"), "0\n".to_string()));
    files
}

const DLA: &str = "sys/kernel/debug/bpmp/debug/clk/dla0_core";

/// The Jetson AGX Xavier table plus its first DLA's clock domain `dla0`.
fn xavier_with_dla() -> DeviceProfile {
    DeviceProfile::jetson_agx_xavier()
        .with_domain(
            DomainName::new("dla0").unwrap(),
            vec![115_200_000, 640_000_000, 1_395_200_000],
        )
        .unwrap()
}

fn write_tree(root: &Path, files: &[(String, String)], mutated: usize, bytes: &[u8]) {
    for (i, (rel, text)) in files.iter().enumerate() {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if i == mutated {
            std::fs::write(p, bytes).unwrap();
        } else {
            std::fs::write(p, text).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn load_trace_csv(which in 0usize..4, e in edits()) {
        static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let seeds = SEEDS.get_or_init(|| {
            ["steady", "step", "periodic", "bursty"]
                .iter()
                .map(|n| std::fs::read(format!("{TRACES}/{n}.csv")).expect("shipped trace"))
                .collect()
        });
        let text = String::from_utf8_lossy(&mutate(&seeds[which], &e)).into_owned();
        match LoadTrace::parse("fuzz", &text, Path::new("trace.csv")) {
            Ok(trace) => prop_assert!(trace.loads().iter().all(|l| l.is_finite())),
            Err(err) => prop_assert!(err.to_string().contains("trace.csv"), "{err}"),
        }
    }

    #[test]
    fn configuration_json(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| {
            let device = DeviceProfile::jetson_agx_xavier();
            let model = dynas_cost::AnalyticalModel::new(
                device.clone(),
                dynas_cost::AnalyticalParams::default(),
            )
            .unwrap();
            let set = dynas_dvfs::reference::dynamic_ofa_xavier(&model, &device).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("configs.json");
            set.to_json_file(&path).unwrap();
            std::fs::read(&path).unwrap()
        });
        let bytes = mutate(seed, &e);
        let (_dir, path) = scratch_file("configs.json", &bytes);
        if let Err(err) = ConfigurationSet::from_file(&path) {
            prop_assert!(err.to_string().contains("configs.json"), "{err}");
        }
    }

    #[test]
    fn sysfs_clock_files(which in any::<usize>(), e in edits()) {
        let files = xavier_files();
        let which = which % files.len();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &files, which, &mutate(files[which].1.as_bytes(), &e));
        let layout = SysfsLayout::jetson_agx_xavier(root).with_domain(
            DomainName::new("dla0").unwrap(),
            DomainInterface::BpmpClock(DLA.into()),
        );
        let device = xavier_with_dla();
        if let Ok(mut control) = SysfsFrequencyControl::new(device.clone(), root, &layout) {
            if let Ok(now) = control.current() {
                // Every domain the layout controls is read back, the DLA included.
                let dla = ClockDomain::named("dla0").unwrap();
                prop_assert!(now.hz(&dla).is_some());
            }
            let _ = control.apply(&device.max_operating_point());
            let _ = control.apply(&device.min_operating_point());
            let _ = control.restore();
        }
    }

    #[test]
    fn proc_stat_files(pid in any::<bool>(), e in edits()) {
        // Seeds: this host's `/proc/stat` and `/proc/self/stat` (real files), or snapshots of
        // them where `/proc` is not available.
        static SEEDS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        let (stat, pid_stat) = SEEDS.get_or_init(|| {
            let stat = std::fs::read("/proc/stat").unwrap_or_else(|_| {
                b"cpu  4705 356 584 3699 23 23 0 0 0 0\ncpu0 1393280 32966 572056 13343292 \
                  6130 0 17875 0 0 0\nintr 114930548 113199788 3 0\nctxt 1990473\n"
                    .to_vec()
            });
            let pid_stat = std::fs::read("/proc/self/stat").unwrap_or_else(|_| {
                b"1234 (fuzz (x) y) S 1 1234 1234 0 -1 4194304 2533 0 0 0 315 67 0 0 20 0 \
                  3 0 3599 6414336 1033 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1\n"
                    .to_vec()
            });
            (stat, pid_stat)
        });
        if pid {
            let text = String::from_utf8_lossy(&mutate(pid_stat, &e)).into_owned();
            if let Err(err) = parse_pid_stat_ticks(&text, Path::new("/proc/self/stat")) {
                prop_assert!(err.to_string().contains("/proc/self/stat"), "{err}");
            }
        } else {
            let text = String::from_utf8_lossy(&mutate(stat, &e)).into_owned();
            match parse_proc_stat(&text, Path::new("/proc/stat")) {
                Ok(t) => prop_assert!(t.busy <= t.total),
                Err(err) => prop_assert!(err.to_string().contains("/proc/stat"), "{err}"),
            }
        }
    }

    #[test]
    fn power_sensor_files(which in 0usize..6, e in edits()) {
        let hw = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3";
        let rapl = "sys/class/powercap/intel-rapl:0";
        let files: Vec<(String, String)> = [
            (format!("{hw}/in1_label"), "VDD_IN\n"),
            (format!("{hw}/in1_input"), "5080\n"),
            (format!("{hw}/curr1_input"), "1200\n"),
            (format!("{rapl}/name"), "package-0\n"),
            (format!("{rapl}/max_energy_range_uj"), "262143328850\n"),
            (format!("{rapl}/energy_uj"), "262143000000\n"),
        ]
        .into_iter()
        .map(|(p, t)| (p, t.to_string()))
        .collect();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &files, which, &mutate(files[which].1.as_bytes(), &e));
        if let Ok(mut s) = Ina3221::discover(root)
            && let Ok(readings) = s.read()
        {
            for r in readings {
                prop_assert!(r.power_mw.is_none_or(f64::is_finite));
            }
        }
        if let Ok(mut s) = Rapl::discover(root) {
            let _ = s.read();
            // A second read after the counter file changes again.
            std::fs::write(root.join(&files[5].0), mutate(b"1000000\n", &e)).unwrap();
            let _ = s.read();
        }
    }
}
