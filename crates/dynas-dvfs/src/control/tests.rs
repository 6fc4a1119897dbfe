//! Tests of the frequency-control backends on fake sysfs trees.

use std::fs;
use std::path::Path;

use dynas_cost::DomainName;

use super::sysfs::*;
use super::*;

const GPU_AVAIL: &str = "114750000 216750000 318750000 420750000 522750000 624750000 \
                         675750000 828750000 905250000 1032750000 1198500000 1236750000 \
                         1338750000 1377000000";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(p, text).expect("write");
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel))
        .expect("read")
        .trim()
        .to_string()
}

/// A fake Xavier tree: two cpufreq policies (schedutil), the gv11b devfreq node and the
/// BPMP EMC clock.
fn xavier_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    for p in ["policy0", "policy4"] {
        let base = format!("sys/devices/system/cpu/cpufreq/{p}");
        write(
            r,
            &format!("{base}/scaling_available_frequencies"),
            "115200 1190400 2265600\n",
        );
        write(r, &format!("{base}/scaling_governor"), "schedutil\n");
        write(r, &format!("{base}/scaling_min_freq"), "115200\n");
        write(r, &format!("{base}/scaling_max_freq"), "2265600\n");
        write(r, &format!("{base}/scaling_cur_freq"), "1190400\n");
    }
    let gpu = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b";
    write(r, &format!("{gpu}/available_frequencies"), GPU_AVAIL);
    write(r, &format!("{gpu}/min_freq"), "114750000\n");
    write(r, &format!("{gpu}/max_freq"), "1377000000\n");
    write(r, &format!("{gpu}/cur_freq"), "624750000\n");
    let emc = "sys/kernel/debug/bpmp/debug/clk/emc";
    write(r, &format!("{emc}/rate"), "2133000000\n");
    write(r, &format!("{emc}/mrq_rate_locked"), "0\n");
    dir
}

fn control(root: &Path) -> SysfsFrequencyControl {
    let layout = SysfsLayout::jetson_agx_xavier(root);
    assert_eq!(layout.cpufreq_policies.len(), 2);
    SysfsFrequencyControl::new(DeviceProfile::jetson_agx_xavier(), root, &layout)
        .expect("open fake tree")
}

const GPU: &str = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b";
const EMC: &str = "sys/kernel/debug/bpmp/debug/clk/emc";
const CPU0: &str = "sys/devices/system/cpu/cpufreq/policy0";

#[test]
fn applies_pins_and_restores_on_drop() {
    let tree = xavier_tree();
    let r = tree.path();
    {
        let mut c = control(r);
        let p =
            OperatingPoint::new(Some(1_190_400_000), Some(522_750_000), Some(665_600_000)).unwrap();
        c.apply(&p).expect("apply");
        assert_eq!(read(r, &format!("{GPU}/min_freq")), "522750000");
        assert_eq!(read(r, &format!("{GPU}/max_freq")), "522750000");
        assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "1190400");
        assert_eq!(read(r, &format!("{CPU0}/scaling_max_freq")), "1190400");
        assert_eq!(
            read(r, "sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq"),
            "1190400"
        );
        assert_eq!(read(r, &format!("{EMC}/rate")), "665600000");
        assert_eq!(read(r, &format!("{EMC}/mrq_rate_locked")), "1");
        // Raising above the pinned max must write max first (min <= max at every step).
        let up = OperatingPoint::new(Some(2_265_600_000), Some(1_377_000_000), None).unwrap();
        c.apply(&up).expect("raise");
        assert_eq!(read(r, &format!("{GPU}/min_freq")), "1377000000");
        assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "2265600");
        // current() reads cur_freq / scaling_cur_freq / rate.
        let cur = c.current().expect("current");
        assert_eq!(cur.memory_hz(), Some(665_600_000));
        assert_eq!(cur.gpu_hz(), Some(624_750_000));
    }
    assert_eq!(read(r, &format!("{GPU}/min_freq")), "114750000");
    assert_eq!(read(r, &format!("{GPU}/max_freq")), "1377000000");
    assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "115200");
    assert_eq!(read(r, &format!("{CPU0}/scaling_max_freq")), "2265600");
    assert_eq!(read(r, &format!("{EMC}/rate")), "2133000000");
    assert_eq!(read(r, &format!("{EMC}/mrq_rate_locked")), "0");
}

#[test]
fn every_clock_of_the_published_xavier_table_can_be_applied() {
    let table = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/dvfs/jetson_operating_points.json"
    );
    let devices = DeviceProfile::from_jetson_table_file(table).expect("shared table");
    let xavier = devices
        .into_iter()
        .find(|d| d.name == "jetson_agx_xavier")
        .expect("xavier");
    let tree = xavier_tree();
    let r = tree.path();
    let layout = SysfsLayout {
        cpufreq_policies: Vec::new(),
        ..SysfsLayout::jetson_agx_xavier(r)
    };
    let mut c = SysfsFrequencyControl::new(xavier.clone(), r, &layout).expect("open");
    for &g in &xavier.gpu_hz {
        for &m in &xavier.memory_hz {
            c.apply(&OperatingPoint::new(None, Some(g), Some(m)).unwrap())
                .expect("published point");
            assert_eq!(read(r, &format!("{GPU}/max_freq")), g.to_string());
            assert_eq!(read(r, &format!("{EMC}/rate")), m.to_string());
        }
    }
    c.restore().expect("restore");
    assert_eq!(read(r, &format!("{GPU}/max_freq")), "1377000000");
}

#[test]
fn refuses_frequencies_outside_the_tables_without_writing() {
    let tree = xavier_tree();
    let r = tree.path();
    let mut c = control(r);
    let bad_gpu = OperatingPoint::new(None, Some(600_000_000), None).unwrap();
    let e = c.apply(&bad_gpu).expect_err("not in device table");
    assert!(
        matches!(&e, DvfsError::UnsupportedFrequency { domain, .. } if domain == "gpu"),
        "{e}"
    );
    // In the device table (29 CPU clocks) but not in this kernel's available list.
    let bad_cpu = OperatingPoint::new(Some(192_000_000), Some(522_750_000), None).unwrap();
    let e = c.apply(&bad_cpu).expect_err("not in kernel list");
    assert!(
        e.to_string().contains("scaling_available_frequencies"),
        "{e}"
    );
    assert_eq!(read(r, &format!("{GPU}/min_freq")), "114750000");
    let bad_emc = OperatingPoint::new(None, None, Some(1_000_000_000)).unwrap();
    assert!(c.apply(&bad_emc).is_err());
    assert_eq!(read(r, &format!("{EMC}/rate")), "2133000000");
}

#[test]
fn restore_keeps_going_after_a_failure_and_reports_it() {
    let tree = xavier_tree();
    let r = tree.path();
    let mut c = control(r);
    c.apply(&OperatingPoint::new(None, Some(522_750_000), Some(665_600_000)).unwrap())
        .expect("apply");
    // The GPU's min_freq becomes unwritable (a directory).
    let min = r.join(GPU).join("min_freq");
    fs::remove_file(&min).expect("rm");
    fs::create_dir(&min).expect("mkdir");
    let e = c.restore().expect_err("gpu restore fails");
    assert!(e.to_string().contains("min_freq"), "{e}");
    assert_eq!(read(r, &format!("{EMC}/rate")), "2133000000");
    assert_eq!(read(r, &format!("{CPU0}/scaling_max_freq")), "2265600");
}

#[test]
fn userspace_governor_uses_setspeed_and_restores_it() {
    let tree = xavier_tree();
    let r = tree.path();
    for p in ["policy0", "policy4"] {
        let base = format!("sys/devices/system/cpu/cpufreq/{p}");
        write(r, &format!("{base}/scaling_governor"), "userspace\n");
        write(r, &format!("{base}/scaling_setspeed"), "2265600\n");
    }
    {
        let mut c = control(r);
        c.apply(&OperatingPoint::new(Some(115_200_000), None, None).unwrap())
            .expect("apply");
        assert_eq!(read(r, &format!("{CPU0}/scaling_setspeed")), "115200");
        assert_eq!(read(r, &format!("{CPU0}/scaling_min_freq")), "115200");
        c.restore().expect("restore");
        assert_eq!(read(r, &format!("{CPU0}/scaling_setspeed")), "2265600");
    }
}

#[test]
fn malformed_and_missing_files_are_typed_errors() {
    let tree = xavier_tree();
    let r = tree.path();
    write(r, &format!("{GPU}/min_freq"), "fast\n");
    let layout = SysfsLayout::jetson_agx_xavier(r);
    let e = SysfsFrequencyControl::new(DeviceProfile::jetson_agx_xavier(), r, &layout)
        .expect_err("malformed");
    assert!(
        matches!(e, DvfsError::Parse { .. }) && e.to_string().contains("min_freq"),
        "{e}"
    );

    let empty = tempfile::tempdir().expect("tempdir");
    let e = SysfsFrequencyControl::new(
        DeviceProfile::jetson_tx2(),
        empty.path(),
        &SysfsLayout::jetson_tx2(),
    )
    .expect_err("missing");
    assert!(matches!(e, DvfsError::NotFound { .. }), "{e}");
}

#[test]
fn permission_problems_are_reported_as_such() {
    let e = DvfsError::io(
        "/sys/x/min_freq",
        "write",
        std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    );
    assert!(matches!(
        e,
        DvfsError::PermissionDenied {
            action: "write",
            ..
        }
    ));
    assert!(e.to_string().contains("root"), "{e}");
    // End to end where the test does not run with privileges that bypass file modes.
    use std::os::unix::fs::PermissionsExt;
    let tree = xavier_tree();
    let r = tree.path();
    let min = r.join(GPU).join("min_freq");
    fs::set_permissions(&min, fs::Permissions::from_mode(0o444)).expect("chmod");
    let privileged = fs::OpenOptions::new().write(true).open(&min).is_ok();
    let mut c = control(r);
    let res = c.apply(&OperatingPoint::new(None, Some(522_750_000), None).unwrap());
    if privileged {
        assert!(res.is_ok());
    } else {
        let e = res.expect_err("read-only file");
        assert!(matches!(e, DvfsError::PermissionDenied { .. }), "{e}");
    }
}

#[test]
fn clock_values_that_overflow_when_scaled_to_hz_are_errors_not_panics() {
    let tree = xavier_tree();
    let r = tree.path();
    // 2^64 / 1000 kHz, the smallest value whose Hz do not fit in a u64.
    let huge_khz = (u64::MAX / 1000 + 1).to_string();
    write(
        r,
        &format!("{CPU0}/scaling_available_frequencies"),
        &format!("115200 {huge_khz}\n"),
    );
    let e = SysfsFrequencyControl::new(
        DeviceProfile::jetson_agx_xavier(),
        r,
        &SysfsLayout::jetson_agx_xavier(r),
    )
    .expect_err("overflowing list");
    assert!(
        matches!(e, DvfsError::Parse { .. }) && e.to_string().contains("64 bits"),
        "{e}"
    );
    let tree = xavier_tree();
    let r = tree.path();
    let c = control(r);
    write(
        r,
        &format!("{CPU0}/scaling_cur_freq"),
        &format!("{huge_khz}\n"),
    );
    let e = c.current().expect_err("overflowing current clock");
    assert!(e.to_string().contains("scaling_cur_freq"), "{e}");
}

#[test]
fn simulated_backend_enforces_the_table_and_records() {
    let mut c = SimulatedFrequencyControl::new(DeviceProfile::jetson_tx2());
    let start = c.current().expect("current");
    assert!(
        c.apply(&OperatingPoint::new(None, Some(1), None).unwrap())
            .is_err()
    );
    c.apply(&OperatingPoint::new(None, Some(114_750_000), None).unwrap())
        .expect("apply");
    assert_eq!(c.current().expect("cur").gpu_hz(), Some(114_750_000));
    assert_eq!(c.current().expect("cur").memory_hz(), start.memory_hz());
    c.restore().expect("restore");
    assert_eq!(c.current().expect("cur"), start);
    assert_eq!(c.transitions().len(), 2);
}

/// The Xavier tree plus a DLA BPMP clock and an NPU devfreq node.
fn tree_with_accelerators() -> tempfile::TempDir {
    let tree = xavier_tree();
    let r = tree.path();
    write(r, &format!("{DLA}/rate"), "1395200000\n");
    write(r, &format!("{DLA}/mrq_rate_locked"), "0\n");
    write(
        r,
        &format!("{NPU}/available_frequencies"),
        "300000000 800000000\n",
    );
    write(r, &format!("{NPU}/min_freq"), "300000000\n");
    write(r, &format!("{NPU}/max_freq"), "800000000\n");
    write(r, &format!("{NPU}/cur_freq"), "800000000\n");
    tree
}

const DLA: &str = "sys/kernel/debug/bpmp/debug/clk/dla0_core";
const NPU: &str = "sys/class/devfreq/npu";

fn accelerator_board() -> DeviceProfile {
    DeviceProfile::jetson_agx_xavier()
        .with_domain(
            DomainName::new("dla0").expect("name"),
            vec![115_200_000, 640_000_000, 1_395_200_000],
        )
        .expect("dla")
        .with_domain(
            DomainName::new("npu").expect("name"),
            vec![300_000_000, 800_000_000],
        )
        .expect("npu")
}

#[test]
fn named_domains_are_written_to_their_sysfs_paths_and_restored() {
    let tree = tree_with_accelerators();
    let r = tree.path();
    let layout = SysfsLayout::jetson_agx_xavier(r)
        .with_domain(
            DomainName::new("dla0").expect("name"),
            DomainInterface::BpmpClock(DLA.into()),
        )
        .with_domain(
            DomainName::new("npu").expect("name"),
            DomainInterface::Devfreq(NPU.into()),
        );
    let (dla, npu) = (
        ClockDomain::named("dla0").expect("dla"),
        ClockDomain::named("npu").expect("npu"),
    );
    {
        let mut c = SysfsFrequencyControl::new(accelerator_board(), r, &layout).expect("open");
        let start = c.current().expect("current");
        assert_eq!(start.hz(&dla), Some(1_395_200_000));
        assert_eq!(start.hz(&npu), Some(800_000_000));
        let p = OperatingPoint::new(None, Some(522_750_000), None)
            .expect("point")
            .with_clock(dla.clone(), 640_000_000)
            .expect("dla")
            .with_clock(npu.clone(), 300_000_000)
            .expect("npu");
        c.apply(&p).expect("apply");
        assert_eq!(read(r, &format!("{DLA}/rate")), "640000000");
        assert_eq!(read(r, &format!("{DLA}/mrq_rate_locked")), "1");
        assert_eq!(read(r, &format!("{NPU}/min_freq")), "300000000");
        assert_eq!(read(r, &format!("{NPU}/max_freq")), "300000000");
        assert_eq!(c.current().expect("current").hz(&dla), Some(640_000_000));
        // A DLA clock outside the device table is refused before anything is written.
        let bad = p.clone().with_clock(dla.clone(), 1).expect("positive");
        let e = c.apply(&bad).expect_err("not in table");
        assert!(
            matches!(&e, DvfsError::UnsupportedFrequency { domain, .. } if domain == "dla0"),
            "{e}"
        );
        assert_eq!(read(r, &format!("{DLA}/rate")), "640000000");
    }
    assert_eq!(read(r, &format!("{DLA}/rate")), "1395200000");
    assert_eq!(read(r, &format!("{DLA}/mrq_rate_locked")), "0");
    assert_eq!(read(r, &format!("{NPU}/min_freq")), "300000000");
    assert_eq!(read(r, &format!("{NPU}/max_freq")), "800000000");
}

#[test]
fn a_named_domain_without_a_sysfs_path_is_an_error() {
    let tree = tree_with_accelerators();
    let r = tree.path();
    // The board has a DLA but the layout does not say where its clock lives.
    let mut c =
        SysfsFrequencyControl::new(accelerator_board(), r, &SysfsLayout::jetson_agx_xavier(r))
            .expect("open");
    let p = OperatingPoint::from_clocks([(ClockDomain::named("dla0").expect("dla"), 640_000_000)])
        .expect("point");
    let e = c.apply(&p).expect_err("no DLA control");
    assert!(
        matches!(&e, DvfsError::NotFound { .. }) && e.to_string().contains("dla0"),
        "{e}"
    );
    assert_eq!(read(r, &format!("{DLA}/rate")), "1395200000");
    // A missing directory for a declared domain is named when opening.
    let layout = SysfsLayout::jetson_agx_xavier(r).with_domain(
        DomainName::new("npu").expect("name"),
        DomainInterface::Devfreq("sys/class/devfreq/missing".into()),
    );
    let e = SysfsFrequencyControl::new(accelerator_board(), r, &layout).expect_err("missing");
    assert!(
        e.to_string().contains("missing") && e.to_string().contains("npu"),
        "{e}"
    );
}

#[test]
fn the_simulated_backend_keeps_named_domains() {
    let mut c = SimulatedFrequencyControl::new(accelerator_board());
    let dla = ClockDomain::named("dla0").expect("dla");
    let p = OperatingPoint::from_clocks([(dla.clone(), 115_200_000)]).expect("point");
    c.apply(&p).expect("apply");
    let cur = c.current().expect("current");
    assert_eq!(cur.hz(&dla), Some(115_200_000));
    assert_eq!(cur.gpu_hz(), Some(1_377_000_000));
    c.restore().expect("restore");
    assert_eq!(c.current().expect("current").hz(&dla), Some(1_395_200_000));
}
