//! Fuzz targets for the files `dynas-cost` reads: layer lookup tables (Harmonic-NAS and
//! once-for-all JSON), the HW-NAS-Bench FBNet table, the Jetson operating-point table,
//! per-architecture CSVs, the DVFS sweep CSVs and user device profiles (JSON / TOML, named
//! clock domains included). Seeds are the real files of the shared data;
//! see `fuzz_support` for the mutations and `DYNAS_FUZZ_CASES`.

#[path = "../../dynas-search/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::Path;
use std::sync::OnceLock;

use dynas_cost::dvfs::{read_gpu_sweep, read_power_sweep};
use dynas_cost::table::read_arch_targets;
use dynas_cost::{DeviceProfile, FbNetLut, LayerLut, TableModel};
use fuzz_support::{config, edits, head, mutate, scratch_file};
use proptest::prelude::*;

macro_rules! data {
    ($rel:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data/", $rel)
    };
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("seed `{path}`: {e}"))
}

/// Every error of a file parser names the file.
fn names(err: &dyn std::fmt::Display, file: &str) -> bool {
    err.to_string().contains(file)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn harmonic_lut_json(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| read(data!("lut/ofa-mnist/jetson_tx2.json")));
        let text = String::from_utf8_lossy(&mutate(seed, &e)).into_owned();
        match LayerLut::from_harmonic_str(&text, Path::new("lut.json")) {
            Ok(lut) => {
                for k in lut.keys() {
                    prop_assert!(lut.get(k).is_some());
                }
            }
            Err(err) => prop_assert!(names(&err, "lut.json"), "{err}"),
        }
    }

    #[test]
    fn ofa_lut_json(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| {
            read(data!("lut/dynamic-ofa-xavier-nx/gpu/160_lookup_table.json"))
        });
        let text = String::from_utf8_lossy(&mutate(seed, &e)).into_owned();
        if let Err(err) = LayerLut::from_ofa_str(&text, Path::new("160_lookup_table.json")) {
            prop_assert!(names(&err, "160_lookup_table.json"), "{err}");
        }
    }

    #[test]
    fn fbnet_lut_json(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        // The real table cut to its first 40 entries per device (a small, valid seed).
        let seed = SEED.get_or_init(|| {
            let full: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&read(data!("fbnet/hwnasbench_fbnet_lut.json"))).unwrap();
            let cut: serde_json::Map<String, serde_json::Value> = full
                .into_iter()
                .map(|(device, table)| {
                    let entries: serde_json::Map<String, serde_json::Value> =
                        table.as_object().unwrap().clone().into_iter().take(40).collect();
                    (device, serde_json::Value::Object(entries))
                })
                .collect();
            serde_json::to_vec_pretty(&cut).unwrap()
        });
        let (_dir, path) = scratch_file("fbnet_lut.json", &mutate(seed, &e));
        if let Err(err) = FbNetLut::from_file(&path) {
            prop_assert!(names(&err, "fbnet_lut.json"), "{err}");
        }
    }

    #[test]
    fn jetson_operating_point_json(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| read(data!("dvfs/jetson_operating_points.json")));
        let (_dir, path) = scratch_file("points.json", &mutate(seed, &e));
        match DeviceProfile::from_jetson_table_file(&path) {
            Ok(devices) => {
                for d in devices {
                    // A device that loads has operating points to enumerate.
                    let _ = d.operating_points();
                    let _ = d.max_operating_point();
                }
            }
            Err(err) => prop_assert!(names(&err, "points.json"), "{err}"),
        }
    }

    #[test]
    fn architecture_table_csv(e in edits()) {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        let seed = SEED.get_or_init(|| head(data!("nb201/nb201_hw.csv"), 40));
        let (_dir, path) = scratch_file("archs.csv", &mutate(seed, &e));
        if let Err(err) = read_arch_targets(&path, "raspi4_latency") {
            prop_assert!(names(&err, "archs.csv"), "{err}");
        }
        if let Err(err) = TableModel::from_csv(&path, "raspi4_latency", Some("pixel3_latency")) {
            prop_assert!(names(&err, "archs.csv"), "{err}");
        }
    }

    #[test]
    fn dvfs_sweep_csv(power in any::<bool>(), e in edits()) {
        static SEEDS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        let (sweep, watts) = SEEDS.get_or_init(|| {
            (
                read(data!("dvfs/jetson_tx2_gpu_sweep.csv")),
                read(data!("dvfs/jetson_tx2_vgg19_gpu_dvfs_power.csv")),
            )
        });
        if power {
            let (_dir, path) = scratch_file("power.csv", &mutate(watts, &e));
            if let Err(err) = read_power_sweep(&path) {
                prop_assert!(names(&err, "power.csv"), "{err}");
            }
        } else {
            let (_dir, path) = scratch_file("sweep.csv", &mutate(sweep, &e));
            if let Err(err) = read_gpu_sweep(&path) {
                prop_assert!(names(&err, "sweep.csv"), "{err}");
            }
        }
    }

    #[test]
    fn device_profile_file(toml in any::<bool>(), e in edits()) {
        // Seeds: the shipped Jetson AGX Xavier profile as JSON, and a TOML board with a DLA
        // clock domain (the Xavier's GPU and EMC clocks plus `dla0`).
        static SEEDS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
        let (json_seed, toml_seed) = SEEDS.get_or_init(|| {
            let xavier = DeviceProfile::jetson_agx_xavier();
            let json = serde_json::to_vec_pretty(&xavier).unwrap();
            let list = |l: &[u64]| {
                l.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            };
            let toml = format!(
                "name = \"xavier-dla\"\ncompute_unit = \"gpu\"\ngpu_hz = [{}]\n\
                 memory_hz = [{}]\n[other_clocks]\ndla0 = [115200000, 640000000, 1395200000]\n",
                list(&xavier.gpu_hz),
                list(&xavier.memory_hz)
            );
            (json, toml.into_bytes())
        });
        let (name, seed) = if toml {
            ("board.toml", toml_seed)
        } else {
            ("board.json", json_seed)
        };
        let (_dir, path) = scratch_file(name, &mutate(seed, &e));
        match DeviceProfile::from_file(&path) {
            Ok(d) => {
                // A profile that loads supports its own extreme points, and its grid (when
                // small enough to list) holds only supported points.
                prop_assert!(d.supports(&d.max_operating_point()));
                prop_assert!(d.supports(&d.min_operating_point()));
                if d.num_operating_points() <= 10_000 {
                    prop_assert!(d.operating_points().iter().all(|p| d.supports(p)));
                }
            }
            Err(err) => prop_assert!(names(&err, name), "{err}"),
        }
    }
}
