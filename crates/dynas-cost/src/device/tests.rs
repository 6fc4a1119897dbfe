//! Tests of device profiles, clock domains and operating points.

use super::*;

#[test]
fn shipped_presets_match_the_published_counts() {
    let xavier = DeviceProfile::jetson_agx_xavier();
    assert_eq!(
        (
            xavier.cpu_hz.len(),
            xavier.gpu_hz.len(),
            xavier.memory_hz.len()
        ),
        (29, 14, 9)
    );
    assert_eq!(xavier.num_operating_points(), 29 * 14 * 9);
    assert_eq!(xavier.max_operating_point().gpu_hz(), Some(1_377_000_000));
    let tx2 = DeviceProfile::jetson_tx2();
    assert_eq!(
        (tx2.cpu_hz.len(), tx2.gpu_hz.len(), tx2.memory_hz.len()),
        (0, 13, 4)
    );
    assert_eq!(tx2.operating_points().len(), 52);
    assert!(tx2.supports(&tx2.min_operating_point()));
    assert!(
        !tx2.supports(
            &OperatingPoint::new(Some(1), Some(114_750_000), Some(1_062_400_000)).unwrap()
        )
    );
}

#[test]
fn user_device_from_toml_and_bad_field_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("board.toml");
    std::fs::write(
        &good,
        "name = \"board\"\ncompute_unit = \"cpu\"\ncpu_hz = [600000000, 1200000000]\n",
    )
    .expect("write");
    let profile = DeviceProfile::from_file(&good).expect("valid profile");
    assert_eq!(profile.operating_points().len(), 2);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"name": "b", "gpu_hz": [5, 3]}"#).expect("write");
    let err = DeviceProfile::from_file(&bad)
        .expect_err("descending clocks")
        .to_string();
    assert!(err.contains("gpu_hz") && err.contains("bad.json"), "{err}");
}

/// A Jetson AGX Xavier-like board with a DLA clock domain next to GPU and memory.
fn board_with_dla() -> DeviceProfile {
    DeviceProfile::new(
        "xavier-dla",
        ComputeUnit::Gpu,
        vec![],
        vec![318_750_000, 1_377_000_000],
        vec![204_000_000, 2_133_000_000],
    )
    .unwrap()
    .with_domain(
        DomainName::new("dla0").unwrap(),
        vec![115_200_000, 640_000_000, 1_395_200_000],
    )
    .unwrap()
}

#[test]
fn a_named_domain_flows_through_the_grid() {
    let board = board_with_dla();
    let dla = ClockDomain::named("dla0").unwrap();
    assert_eq!(board.num_operating_points(), 2 * 2 * 3);
    let points = board.operating_points();
    assert_eq!(points.len(), 12);
    // Every point sets the DLA clock; the DLA varies fastest (after memory).
    assert!(points.iter().all(|p| p.hz(&dla).is_some()));
    assert_eq!(
        points[..3].iter().map(|p| p.hz(&dla)).collect::<Vec<_>>(),
        [Some(115_200_000), Some(640_000_000), Some(1_395_200_000)]
    );
    assert!(points.iter().all(|p| board.supports(p)));
    assert_eq!(board.max_operating_point().hz(&dla), Some(1_395_200_000));
    assert_eq!(board.min_operating_point().hz(&dla), Some(115_200_000));
    // A point without the DLA clock, or with a clock the DLA lacks, is not the board's.
    let no_dla = OperatingPoint::new(None, Some(318_750_000), Some(204_000_000)).unwrap();
    assert!(!board.supports(&no_dla));
    let off = no_dla.clone().with_clock(dla.clone(), 1).unwrap();
    assert!(!board.supports(&off));
    // A domain the board does not have is refused too.
    let npu = points[0]
        .clone()
        .with_clock(ClockDomain::named("npu").unwrap(), 1_000_000_000)
        .unwrap();
    assert!(!board.supports(&npu));
    assert!(
        points[0].to_string().ends_with("/ dla0 115.2 MHz"),
        "{}",
        points[0]
    );
}

#[test]
fn user_board_with_a_named_domain_from_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("npu_board.toml");
    std::fs::write(
        &path,
        "name = \"npu-board\"\ncompute_unit = \"cpu\"\ncpu_hz = [600000000, 1200000000]\n\
         [other_clocks]\nnpu = [300000000, 800000000]\n",
    )
    .expect("write");
    let board = DeviceProfile::from_file(&path).expect("valid profile");
    let npu = ClockDomain::named("npu").unwrap();
    assert_eq!(board.clocks_of(&npu), [300_000_000, 800_000_000]);
    assert_eq!(board.operating_points().len(), 4);
    // Written back with its named domain, read back equal.
    let json = serde_json::to_string(&board).unwrap();
    assert!(
        json.contains(r#""other_clocks":{"npu":[300000000,800000000]}"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<DeviceProfile>(&json).unwrap(), board);

    let bad = dir.path().join("bad.toml");
    for (text, field) in [
        (
            "name = \"b\"\ncpu_hz = [1]\n[other_clocks]\nnpu = [5, 3]\n",
            "other_clocks.npu",
        ),
        (
            "name = \"b\"\ncpu_hz = [1]\n[other_clocks]\ngpu = [5]\n",
            "gpu",
        ),
        (
            "name = \"b\"\ncpu_hz = [1]\n[other_clocks]\n\"DLA 0\" = [5]\n",
            "DLA 0",
        ),
    ] {
        std::fs::write(&bad, text).expect("write");
        let err = DeviceProfile::from_file(&bad).expect_err(text).to_string();
        assert!(err.contains(field) && err.contains("bad.toml"), "{err}");
    }
}

#[test]
fn points_are_validated_at_construction() {
    let err = OperatingPoint::new(None, Some(0), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gpu_hz") && err.contains("0 Hz"), "{err}");
    let dla = ClockDomain::named("dla0").unwrap();
    let err = OperatingPoint::from_clocks([(dla.clone(), 1), (dla.clone(), 2)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("dla0_hz") && err.contains("twice"), "{err}");
    assert!(OperatingPoint::default().with_clock(dla, 0).is_err());
    // Well-known names have one spelling only.
    assert!(DomainName::new("emc").is_err());
    assert_eq!(ClockDomain::parse("emc").unwrap(), ClockDomain::Memory);
    assert!(ClockDomain::named("").is_err());
    assert!(ClockDomain::named("0dla").is_err());
}

#[test]
fn point_json_keeps_the_former_format_and_adds_named_domains() {
    // The former derived format: every field present, `null` where no clock.
    let old = r#"{"cpu_hz":null,"gpu_hz":1377000000,"memory_hz":2133000000}"#;
    let p: OperatingPoint = serde_json::from_str(old).unwrap();
    assert_eq!(
        p,
        OperatingPoint::new(None, Some(1_377_000_000), Some(2_133_000_000)).unwrap()
    );
    assert_eq!(serde_json::to_string(&p).unwrap(), old);
    let emc: OperatingPoint = serde_json::from_str(r#"{"emc_hz": 204000000}"#).unwrap();
    assert_eq!(emc.memory_hz(), Some(204_000_000));
    // A named domain is one more `<domain>_hz` field.
    let dla = p
        .clone()
        .with_clock(ClockDomain::named("dla0").unwrap(), 1_395_200_000)
        .unwrap();
    let text = serde_json::to_string(&dla).unwrap();
    assert_eq!(
        text,
        r#"{"cpu_hz":null,"gpu_hz":1377000000,"memory_hz":2133000000,"dla0_hz":1395200000}"#
    );
    assert_eq!(serde_json::from_str::<OperatingPoint>(&text).unwrap(), dla);
    // Bad fields are named.
    for (text, needle) in [
        (r#"{"gpu_hz": 0}"#, "gpu_hz"),
        (r#"{"memory_hz": 1, "emc_hz": 2}"#, "memory_hz"),
        (r#"{"gpu": 1}"#, "gpu"),
        (r#"{"Bad Name_hz": 1}"#, "Bad Name_hz"),
    ] {
        let err = serde_json::from_str::<OperatingPoint>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn points_order_as_the_former_cpu_gpu_memory_fields() {
    let a = OperatingPoint::new(None, Some(2), None).unwrap();
    let b = OperatingPoint::new(Some(1), Some(1), None).unwrap();
    let c = OperatingPoint::new(None, Some(2), Some(1)).unwrap();
    // None < Some, then field by field: cpu first.
    assert!(a < b && a < c && c < b);
    let d = a
        .clone()
        .with_clock(ClockDomain::named("dla0").unwrap(), 1)
        .unwrap();
    assert!(a < d && d < c);
}

#[test]
fn check_domains_names_the_unknown_domain() {
    let p = OperatingPoint::new(None, Some(1), None)
        .unwrap()
        .with_clock(ClockDomain::named("npu").unwrap(), 5)
        .unwrap();
    assert!(
        p.check_domains("m", &ClockDomain::WELL_KNOWN)
            .is_err_and(|e| matches!(
                e,
                CostError::UnknownClockDomain { ref domain, .. } if domain == "npu"
            ))
    );
    let known = [ClockDomain::Gpu, ClockDomain::named("npu").unwrap()];
    assert!(p.check_domains("m", &known).is_ok());
}

#[test]
fn a_device_with_an_accelerator_is_built_through_the_api() {
    let npu = DomainName::new("npu").unwrap();
    let unit = ComputeUnit::Accelerator(npu.clone());
    let board = DeviceProfile::builder("npu-board", unit.clone())
        .cpu_hz(vec![600_000_000, 1_200_000_000])
        .memory_hz(vec![1_600_000_000])
        .domain(npu.clone(), vec![300_000_000, 800_000_000])
        .build()
        .expect("the npu's clocks come from `domain`");
    assert_eq!(board.compute_hz_list(), [300_000_000, 800_000_000]);
    assert_eq!(board.operating_points().len(), 2 * 2);
    // The same board from `new` on the CPU, then the NPU's clocks, then the NPU as the unit.
    let same = DeviceProfile::new(
        "npu-board",
        ComputeUnit::Cpu,
        vec![600_000_000, 1_200_000_000],
        vec![],
        vec![1_600_000_000],
    )
    .unwrap()
    .with_domain(npu.clone(), vec![300_000_000, 800_000_000])
    .unwrap()
    .with_compute_unit(unit.clone())
    .unwrap();
    assert_eq!(same, board);
    assert!(board.validate().is_ok());
    // Without the NPU's clocks the builder refuses, naming the field and the way out.
    let err = DeviceProfile::builder("npu-board", unit)
        .cpu_hz(vec![600_000_000])
        .build()
        .expect_err("no npu clocks");
    assert!(
        matches!(&err, CostError::InvalidParameter { name, .. } if name == "compute_unit"),
        "{err}"
    );
    assert!(err.to_string().contains("domain(npu, clocks)"), "{err}");
    // A domain given twice is refused at `build`.
    let err = DeviceProfile::builder("b", ComputeUnit::Cpu)
        .cpu_hz(vec![1])
        .domain(npu.clone(), vec![1])
        .domain(npu, vec![2])
        .build()
        .expect_err("npu twice");
    assert!(err.to_string().contains("other_clocks.npu"), "{err}");
}

#[test]
fn in_memory_errors_name_the_field_not_a_file() {
    let err = DeviceProfile::new("b", ComputeUnit::Gpu, vec![], vec![5, 3], vec![])
        .expect_err("descending");
    let msg = err.to_string();
    assert!(
        matches!(&err, CostError::InvalidParameter { name, .. } if name == "gpu_hz"),
        "{msg}"
    );
    assert!(
        !msg.contains("malformed") && !msg.contains("in memory"),
        "{msg}"
    );
    assert!(
        msg.contains("device `b`") && msg.contains("ascending"),
        "{msg}"
    );
    let err =
        DeviceProfile::new("b", ComputeUnit::Cpu, vec![0, 1], vec![], vec![]).expect_err("0 Hz");
    assert!(
        matches!(&err, CostError::InvalidParameter { name, .. } if name == "cpu_hz"),
        "{err}"
    );
    let err = board_with_dla()
        .with_domain(DomainName::new("npu").unwrap(), vec![2, 1])
        .expect_err("descending npu");
    assert!(
        matches!(&err, CostError::InvalidParameter { name, .. } if name == "other_clocks.npu"),
        "{err}"
    );
    // A struct literal is checked with `validate`, with the same errors.
    let literal = DeviceProfile {
        compute_unit: ComputeUnit::Cpu,
        ..board_with_dla()
    };
    let err = literal.validate().expect_err("no cpu clocks");
    assert!(
        matches!(&err, CostError::InvalidParameter { name, .. } if name == "compute_unit"),
        "{err}"
    );
}

#[test]
fn operating_points_print_only_the_clocks_they_set() {
    let mem = OperatingPoint::new(None, None, Some(1_600_000_000)).unwrap();
    assert_eq!(mem.to_string(), "mem 1600 MHz");
    let p = OperatingPoint::new(Some(1_190_400_000), Some(114_750_000), Some(1_600_000_000))
        .unwrap()
        .with_clock(ClockDomain::named("dla0").unwrap(), 115_200_000)
        .unwrap();
    assert_eq!(
        p.to_string(),
        "cpu 1190.4 MHz / gpu 114.75 MHz / mem 1600 MHz / dla0 115.2 MHz"
    );
    assert_eq!(OperatingPoint::default().to_string(), "default clocks");
}
