//! Fuzz targets for the files `dynas-dvfs` reads: configuration tables (JSON), load traces
//! (CSV), sysfs clock files (cpufreq, devfreq, EMC) and power-sensor files (INA3221 hwmon,
//! RAPL). Seeds are the shipped traces, the Dynamic-OFA table and a sysfs tree with the
//! published Jetson AGX Xavier clocks; see `fuzz_support` for the mutations and
//! `DYNAS_FUZZ_CASES`.

#[path = "../../dynas-search/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::Path;
use std::sync::OnceLock;

use dynas_dvfs::{
    ConfigurationSet, DeviceProfile, FrequencyControl, Ina3221, LoadTrace, PowerSensor, Rapl,
    SysfsFrequencyControl, SysfsLayout,
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
    files
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
        let layout = SysfsLayout::jetson_agx_xavier(root);
        if let Ok(mut control) =
            SysfsFrequencyControl::new(DeviceProfile::jetson_agx_xavier(), root, &layout)
        {
            let _ = control.current();
            let _ = control.apply(&DeviceProfile::jetson_agx_xavier().max_operating_point());
            let _ = control.restore();
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
