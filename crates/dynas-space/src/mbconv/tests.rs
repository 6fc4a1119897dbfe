//! Tests of the MBConv spaces: presets, codec, lowering, validation.

use approx::assert_relative_eq;

use super::*;
use crate::seeded_rng;

#[test]
fn make_divisible_matches_the_reference_rounding() {
    assert_eq!(make_divisible(48, 8), 48);
    assert_eq!(make_divisible(16 * 5, 8), 80);
    assert_eq!(make_divisible(24 * 5, 8), 120);
    assert_eq!(make_divisible(36, 8), 40);
    assert_eq!(make_divisible(3, 8), 8);
    assert_eq!(make_divisible(100, 8), 104);
    assert_eq!(make_divisible(7, 1), 7);
}

#[test]
fn presets_have_the_documented_gene_counts() {
    let attentive = MbConvSpace::attentive_nas();
    assert_eq!(attentive.dimensions().len(), 28);
    // 4 resolutions x 2 first-conv widths x stage choices x 2 last-conv widths.
    let stages: u128 = [
        2 * 2 * 2,
        2 * 3 * 2 * 3,
        2 * 4 * 2 * 3,
        2 * 4 * 2 * 3,
        3 * 6 * 2 * 3,
        4 * 6 * 2,
        2 * 2 * 2,
    ]
    .iter()
    .product();
    assert_eq!(attentive.cardinality(), 4 * 2 * stages * 2);
    let names: Vec<&str> = attentive.dimensions().iter().map(|d| d.name()).collect();
    assert_eq!(
        &names[..6],
        &[
            "resolution",
            "first_conv.width",
            "mb1.width",
            "mb1.depth",
            "mb1.kernel",
            "mb2.width"
        ]
    );
    assert_eq!(names[27], "feature_mix.width");
    // The same 28-gene layout as the AlphaNet/AttentiveNAS encodings used with HADAS-style
    // searches (resolution, first conv, per stage width/depth/kernel[/expand], last conv).
    assert_eq!(
        attentive.largest().genes(),
        &[
            3, 1, 1, 1, 1, 1, 2, 1, 2, 1, 3, 1, 2, 1, 3, 1, 2, 2, 5, 1, 2, 3, 5, 1, 1, 1, 1, 1
        ]
    );

    let ofa = MbConvSpace::ofa_mobilenet_v3();
    assert_eq!(ofa.dimensions().len(), 46);
    assert_eq!(ofa.dimensions()[0].len(), 17);
    assert_eq!(ofa.dimensions()[1].name(), "stage1.depth");
    assert_eq!(ofa.dimensions()[2].name(), "stage1.block0.kernel");

    let mnist = MbConvSpace::ofa_mnist();
    assert_eq!(mnist.dimensions().len(), 10);
    assert_eq!(mnist.cardinality(), 2 * 3 * 9u128.pow(4));
}

#[test]
fn attentive_nas_a0_matches_the_published_flops() {
    // AttentiveNAS-A0 is the smallest subnet: 203 M MACs at 192x192 (paper, table 1).
    let space = MbConvSpace::attentive_nas();
    let a0 = space.subnet(&space.smallest()).expect("smallest decodes");
    assert_eq!(a0.resolution, 192);
    assert_eq!(
        a0.stages.iter().map(|s| s.depth).collect::<Vec<_>>(),
        [1, 3, 3, 3, 3, 3, 1]
    );
    let network = space.network(&a0);
    assert_relative_eq!(network.macs() as f64, 203e6, max_relative = 0.01);
    let largest = space.decode(&space.largest()).expect("largest decodes");
    assert!(largest.macs() > 5 * network.macs());
    assert_eq!(largest.output().channels, 1000);
}

#[test]
fn ofa_mobilenet_v3_supernet_has_the_published_size() {
    // OFA's ofa_mbv3_d234_e346_k357_w1.0 supernet: 7.7 M parameters.
    let space = MbConvSpace::ofa_mobilenet_v3();
    let largest = space.decode(&space.largest()).expect("largest decodes");
    assert_relative_eq!(largest.params() as f64, 7.7e6, max_relative = 0.02);
    let smallest = space.decode(&space.smallest()).expect("smallest decodes");
    assert!(smallest.macs() < largest.macs());
    let names: Vec<&str> = largest.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(&names[..3], &["first_conv", "first_block", "stage1.block0"]);
    assert_eq!(
        &names[names.len() - 4..],
        &["final_expand", "global_pool", "feature_mix", "classifier"]
    );
    let final_expand = &largest.layers[names.len() - 4];
    assert!(
        !space
            .dimensions()
            .iter()
            .any(|d| d.name().contains("width"))
    );
    assert_eq!(
        (final_expand.input.channels, final_expand.out_channels),
        (160, 960)
    );
    // stage2 has SE with squeeze = make_divisible(mid / 4, 8).
    let block = &largest.layers[1 + 1 + 4];
    assert_eq!(block.name, "stage2.block0");
    assert_eq!(block.mid_channels, 144);
    assert_eq!(block.se_channels, Some(40));
}

#[test]
fn subnet_and_genotype_are_inverse() {
    for space in [
        MbConvSpace::attentive_nas(),
        MbConvSpace::ofa_mobilenet_v3(),
        MbConvSpace::ofa_mnist(),
    ] {
        let mut rng = seeded_rng(11);
        for _ in 0..50 {
            let genotype = space.sample(&mut rng);
            let subnet = space.subnet(&genotype).expect("decodes");
            for stage in &subnet.stages {
                assert_eq!(stage.blocks.len(), stage.depth);
            }
            let canonical = space.genotype(&subnet).expect("encodes");
            assert_eq!(space.subnet(&canonical).expect("decodes"), subnet);
            assert_eq!(space.canonical(&canonical).expect("canonical"), canonical);
        }
    }
}

#[test]
fn per_block_genes_beyond_depth_are_inactive() {
    let space = MbConvSpace::ofa_mnist();
    let mut genotype = space.smallest(); // depth 2: blocks 2 and 3 inactive
    let base = space.decode(&genotype).expect("decodes");
    let last = genotype.len() - 1; // stage1.block3.expand
    genotype.genes_mut()[last] = 2;
    assert_eq!(space.decode(&genotype).expect("decodes"), base);
    assert_eq!(
        space.canonical(&genotype).expect("canonical"),
        space.smallest()
    );
}

#[test]
fn bad_subnets_and_genotypes_are_typed_errors() {
    let space = MbConvSpace::attentive_nas();
    let mut subnet = space.subnet(&space.smallest()).expect("decodes");
    subnet.resolution = 100;
    assert_eq!(
        space.genotype(&subnet),
        Err(SpaceError::UnknownName {
            space: "attentive-nas".into(),
            name: "resolution=100".into()
        })
    );
    let mut subnet = space.subnet(&space.smallest()).expect("decodes");
    subnet.stages[1].blocks[2].kernel = 5;
    assert!(matches!(
        space.genotype(&subnet),
        Err(SpaceError::InvalidParameter {
            name: "subnet blocks",
            ..
        })
    ));
    let mut subnet = space.subnet(&space.smallest()).expect("decodes");
    subnet.stages[1].depth = 4;
    assert!(matches!(
        space.genotype(&subnet),
        Err(SpaceError::InvalidParameter {
            name: "subnet blocks",
            ..
        })
    ));
    let mut subnet = space.subnet(&space.smallest()).expect("decodes");
    subnet.final_expand_width = Some(100);
    assert!(matches!(
        space.genotype(&subnet),
        Err(SpaceError::InvalidParameter {
            name: "final_expand_width",
            ..
        })
    ));
    assert!(matches!(
        space.decode(&Genotype::new(vec![0; 27])),
        Err(SpaceError::WrongLength {
            expected: 28,
            got: 27,
            ..
        })
    ));
    let mut genotype = space.smallest();
    genotype.genes_mut()[0] = 4;
    assert!(matches!(
        space.subnet(&genotype),
        Err(SpaceError::IndexOutOfRange {
            index: 4,
            choices: 4,
            ..
        })
    ));
}

#[test]
fn invalid_stage_tables_are_rejected_with_the_field_named() {
    let space = MbConvSpace::ofa_mnist();
    let head = space.head().clone();
    let stage = space.stages()[0].clone();
    let expect_invalid =
        |head: HeadSpec, stages: Vec<StageSpec>, needle: &str| match MbConvSpace::new(
            "custom", head, stages,
        ) {
            Err(SpaceError::InvalidSpace(message)) => {
                assert!(message.contains(needle), "`{message}` lacks `{needle}`");
            }
            other => panic!("expected InvalidSpace, got {other:?}"),
        };
    expect_invalid(head.clone(), vec![], "no stages");
    let mut s = stage.clone();
    s.kernels = vec![5, 3];
    expect_invalid(head.clone(), vec![s], "kernels");
    let mut s = stage.clone();
    s.kernels = vec![3, 4];
    expect_invalid(head.clone(), vec![s], "not odd");
    let mut s = stage.clone();
    s.stride = 3;
    expect_invalid(head.clone(), vec![s], "stride 3");
    let mut s = stage.clone();
    s.depths = vec![];
    expect_invalid(head.clone(), vec![s], "depths");
    let mut s = stage.clone();
    s.name = "a.b".into();
    expect_invalid(head.clone(), vec![s], "name");
    expect_invalid(head.clone(), vec![stage.clone(), stage.clone()], "twice");
    let mut h = head.clone();
    h.resolutions = vec![28, 28];
    expect_invalid(h, vec![stage.clone()], "resolutions");
    let mut h = head.clone();
    h.num_classes = 0;
    expect_invalid(h, vec![stage.clone()], "num_classes");
    assert!(MbConvSpace::new("custom", head, vec![stage]).is_ok());
}

#[test]
fn specs_round_trip_through_json_files_and_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    for space in [
        MbConvSpace::attentive_nas(),
        MbConvSpace::ofa_mobilenet_v3(),
        MbConvSpace::ofa_mnist(),
    ] {
        let path = dir.path().join(format!("{}.json", space.name()));
        let json = serde_json::to_string_pretty(&space.spec()).expect("serialises");
        std::fs::write(&path, json).expect("write");
        assert_eq!(MbConvSpace::from_json_file(&path).expect("loads"), space);
    }
    let missing = dir.path().join("missing.json");
    match MbConvSpace::from_json_file(&missing) {
        Err(SpaceError::Parse { input, .. }) => assert!(input.ends_with("missing.json")),
        other => panic!("expected a parse error, got {other:?}"),
    }
    let mut spec = serde_json::to_value(MbConvSpace::ofa_mnist().spec()).expect("value");
    spec["head"]
        .as_object_mut()
        .expect("object")
        .remove("num_classes");
    match MbConvSpace::from_json_str("mnist.json", &spec.to_string()) {
        Err(SpaceError::Parse { input, reason }) => {
            assert_eq!(input, "mnist.json");
            assert!(reason.contains("num_classes"), "{reason}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    spec["head"]["num_classes"] = 10.into();
    spec["stages"][0]["kernels"] = serde_json::json!([7, 3]);
    assert!(matches!(
        MbConvSpace::from_json_str("mnist.json", &spec.to_string()),
        Err(SpaceError::InvalidSpace(message)) if message.contains("kernels")
    ));
}

#[test]
fn oversized_definitions_are_refused_before_any_allocation() {
    // Each of these once allocated a dimension per block (a billion blocks: no end) or
    // overflowed the u64 MAC counter when the largest subnet was decoded.
    let base = serde_json::to_value(MbConvSpace::ofa_mnist().spec()).expect("value");
    let cases = [
        (
            "/stages/0/depths",
            serde_json::json!([2, 3, 1_000_000_000_u64]),
            "depths",
        ),
        (
            "/stages/0/widths",
            serde_json::json!([16, 1_u64 << 40]),
            "widths",
        ),
        (
            "/head/resolutions",
            serde_json::json!([28, 1_u64 << 30]),
            "resolutions",
        ),
        (
            "/stages/0/expand_ratios",
            serde_json::json!([3, 4, 1_u64 << 20]),
            "expand_ratios",
        ),
        (
            "/head/num_classes",
            serde_json::json!(1_u64 << 40),
            "num_classes",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut spec = base.clone();
        *spec.pointer_mut(pointer).expect("field exists") = value;
        match MbConvSpace::from_json_str("big.json", &spec.to_string()) {
            Err(SpaceError::InvalidSpace(message)) => {
                assert!(
                    message.contains(field) && message.contains("limit"),
                    "{message}"
                );
            }
            other => panic!("{pointer}: expected a limit error, got {other:?}"),
        }
    }
    let mut many = base.clone();
    let stage = many["stages"][0].clone();
    let stages: Vec<_> = (0..=MbConvSpace::MAX_STAGES)
        .map(|i| {
            let mut s = stage.clone();
            s["name"] = format!("s{i}").into();
            s
        })
        .collect();
    many["stages"] = stages.into();
    assert!(matches!(
        MbConvSpace::from_json_str("many.json", &many.to_string()),
        Err(SpaceError::InvalidSpace(message)) if message.contains("stages")
    ));
}

#[test]
fn num_classes_can_be_changed() {
    let space = MbConvSpace::attentive_nas()
        .with_num_classes(100)
        .expect("valid");
    let network = space.decode(&space.smallest()).expect("decodes");
    assert_eq!(network.output().channels, 100);
    assert!(MbConvSpace::attentive_nas().with_num_classes(0).is_err());
}

#[test]
fn gene_roles_describe_every_gene() {
    for space in [
        MbConvSpace::attentive_nas(),
        MbConvSpace::ofa_mobilenet_v3(),
        MbConvSpace::ofa_mnist(),
    ] {
        let roles = space.gene_roles();
        assert_eq!(roles.len(), space.dimensions().len(), "{}", space.name());
        for (role, dim) in roles.iter().zip(space.dimensions()) {
            // The names are the space's own labels for the same structure.
            let expected = match *role {
                MbConvGene::Resolution => "resolution".to_string(),
                MbConvGene::FirstConvWidth => "first_conv.width".to_string(),
                MbConvGene::StageWidth { stage } => format!("{}.width", space.stages()[stage].name),
                MbConvGene::StageDepth { stage } => format!("{}.depth", space.stages()[stage].name),
                MbConvGene::Kernel { stage, block } | MbConvGene::Expand { stage, block } => {
                    let what = if matches!(role, MbConvGene::Kernel { .. }) {
                        "kernel"
                    } else {
                        "expand"
                    };
                    let stage = &space.stages()[stage].name;
                    match block {
                        Some(b) => format!("{stage}.block{b}.{what}"),
                        None => format!("{stage}.{what}"),
                    }
                }
                MbConvGene::FinalExpandWidth => "final_expand.width".to_string(),
                MbConvGene::FeatureMixWidth => "feature_mix.width".to_string(),
            };
            assert_eq!(dim.name(), expected);
            assert_eq!(
                space.gene_of(*role).map(|g| space.dimensions()[g].name()),
                Some(dim.name())
            );
        }
    }
}

#[test]
fn block_slots_follow_the_largest_network() {
    let space = MbConvSpace::attentive_nas();
    let largest = space.decode(&space.largest()).expect("decodes");
    let slots = space.block_slots();
    let stage_blocks: Vec<&str> = largest
        .layers
        .iter()
        .filter(|l| l.kind == crate::OpKind::MbConv && l.name != "first_block")
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(
        slots.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        stage_blocks
    );
    assert!(slots.iter().all(|s| s.stage < space.stages().len()));
    let firsts = slots.iter().filter(|s| s.block == 0).count();
    assert_eq!(firsts, space.stages().len());
    assert_eq!(
        MbConvGene::Kernel {
            stage: 0,
            block: Some(2)
        }
        .in_stage(3),
        MbConvGene::Kernel {
            stage: 3,
            block: Some(2)
        }
    );
    assert_eq!(MbConvGene::Resolution.in_stage(3), MbConvGene::Resolution);
}

#[test]
fn head_width_errors_read_as_sentences() {
    let space = MbConvSpace::attentive_nas();
    let mut subnet = space.subnet(&space.smallest()).expect("decodes");
    subnet.final_expand_width = Some(100);
    let err = space.genotype(&subnet).expect_err("width not in the space");
    let shown = err.to_string();
    assert!(
        shown.contains("final_expand_width") && !shown.contains("Some("),
        "{shown}"
    );
    // Debug (what `unwrap` and `main() -> Result` print) is the same sentence, not a dump.
    assert_eq!(format!("{err:?}"), shown);
    let mut subnet = space.subnet(&space.smallest()).expect("decodes");
    subnet.feature_mix_width = None;
    // AttentiveNAS has a feature-mix conv, so a subnet without its width is refused.
    let shown = space.genotype(&subnet).expect_err("no width").to_string();
    assert!(shown.contains("no width given"), "{shown}");
}
