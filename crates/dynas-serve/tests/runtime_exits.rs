//! The runtime executes what a search deploys: a bundle (deployment, batch-norm store, exit
//! heads) is read back, every point's exits sit where the deployment says, and each input
//! leaves at the first deployed exit whose threshold its confidence reaches.

// The supernet tests' fixtures (tiny data set, randomised variables), shared rather than copied.
#[path = "../../dynas-supernet/tests/common/mod.rs"]
mod common;

use common::{randomise, tiny_dataset};
use dynas_exits::{Backbone, ExitHead, ExitHeads};
use dynas_search::{DeployedExit, DeployedMetrics, Deployment, DeploymentPoint, Provenance};
use dynas_serve::{Family, check_points};
use dynas_space::{
    Activation, ChoiceScope, FinalExpand, FirstBlockSpec, HeadSpec, LayerIndex, MbConvSpace,
    SearchSpace, StageSpec,
};
use dynas_supernet::bundle::{self, HeadLayout};
use dynas_supernet::{BnStore, Supernet, SupernetConfig};
use dynas_testkit::libtorch_turn;
use tch::{Device, Kind};

fn space() -> MbConvSpace {
    let head = HeadSpec {
        in_channels: 1,
        resolutions: vec![16],
        first_conv_widths: vec![8],
        first_conv_stride: 2,
        first_conv_activation: Activation::Relu,
        first_block: Some(FirstBlockSpec {
            width: 8,
            kernel: 3,
            expand_ratio: 1,
            stride: 1,
            se: false,
            activation: Activation::Relu,
        }),
        final_expand: FinalExpand::Widths(vec![16]),
        feature_mix_widths: Some(vec![16]),
        tail_activation: Activation::Relu,
        num_classes: 5,
        channel_divisor: 4,
        projection_shortcuts: true,
    };
    let stage = StageSpec {
        name: "s1".to_string(),
        widths: vec![8, 16],
        depths: vec![1, 2],
        kernels: vec![3, 5],
        expand_ratios: vec![2, 4],
        stride: 2,
        se: false,
        activation: Activation::Relu,
        scope: ChoiceScope::PerBlock,
    };
    MbConvSpace::new("tiny-runtime", head, vec![stage]).unwrap()
}

fn point(genotype: dynas_space::Genotype, exits: Vec<DeployedExit>, top1: f64) -> DeploymentPoint {
    DeploymentPoint {
        genotype,
        exits,
        point: Default::default(),
        metrics: DeployedMetrics {
            top1,
            latency_ms: 1.0,
            energy_mj: None,
            accuracy_source: Provenance::measured("test"),
            cost_source: Provenance::measured("test"),
        },
    }
}

#[test]
fn a_served_network_takes_its_exits_as_the_thresholds_say() {
    let _turn = libtorch_turn();
    tch::manual_seed(3);
    let space = space();
    let supernet = Supernet::new(space.clone(), SupernetConfig::default(), Device::Cpu).unwrap();
    randomise(supernet.var_store(), |n| n.contains("bn"));
    let g = space.largest();
    let subnet = supernet.extract_genotype(&g).unwrap();
    let blocks = subnet.num_blocks();
    assert!(blocks >= 4, "{blocks} blocks");
    let head_blocks = vec![1, 2];
    let spec = ExitHead::new(8, Activation::Relu, 5).unwrap();
    let heads = ExitHeads::new(&subnet, head_blocks.clone(), spec, Device::Cpu).unwrap();
    randomise(heads.var_store(), |_| true);

    // The confidences head 1 (after block 2) gives, computed on the extracted subnet: a
    // threshold between two of them splits the images at a known place.
    let data = tiny_dataset(60, 9);
    let norm = data.channel_stats();
    let idx: Vec<usize> = (0..data.len()).collect();
    let batch = data.batch(
        &idx,
        &norm,
        &dynas_supernet::Augmentation::NONE,
        &mut dynas_space::seeded_rng(0),
        Device::Cpu,
    );
    let mut h = batch.images.shallow_clone();
    for b in 0..=2 {
        h = subnet.forward_block(b, &h).unwrap();
    }
    let conf = Vec::<f32>::try_from(
        heads
            .head_logits(1, &h)
            .unwrap()
            .softmax(-1, Kind::Float)
            .max_dim(-1, false)
            .0,
    )
    .unwrap();
    let mut sorted: Vec<f64> = conf.iter().map(|&c| f64::from(c)).collect();
    sorted.sort_by(f64::total_cmp);
    let k = sorted.len() / 3;
    let threshold = 0.5 * (sorted[k - 1] + sorted[k]);
    let expected_rate = (sorted.len() - k) as f64 / sorted.len() as f64;

    // The bundle, as `dynas hadas` writes it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bundle::exit_heads_dir(dir.path())).unwrap();
    heads
        .save(bundle::exit_heads_path(dir.path(), &g), None)
        .unwrap();
    HeadLayout {
        head: spec,
        blocks: head_blocks,
    }
    .write(dir.path(), &g)
    .unwrap();
    let mut store = BnStore::new();
    store.capture(&supernet, &g).unwrap();
    store.save(bundle::bn_store_path(dir.path())).unwrap();
    let exit = |layer: usize, threshold: f64, rate: f64| DeployedExit {
        after_layer: LayerIndex::new(layer),
        threshold,
        exit_rate: rate,
    };
    let deployment = Deployment::new(
        "hadas",
        &space,
        None,
        vec![
            // Always leaves at the first exit.
            point(g.clone(), vec![exit(1, 0.0, 1.0)], 20.0),
            // Leaves at the second exit when the confidence reaches the threshold.
            point(g.clone(), vec![exit(2, threshold, expected_rate)], 21.0),
            // Never leaves early.
            point(g.clone(), vec![], 22.0),
        ],
    )
    .unwrap();
    deployment
        .write_json(bundle::deployment_path(dir.path()))
        .unwrap();

    let (family, read) = Family::from_bundle(&supernet, dir.path()).unwrap();
    assert_eq!(read, deployment);
    for (m, p) in family.members().iter().zip(&deployment.points) {
        assert_eq!(m.deployed_exits, p.exits, "every exit intact");
        assert_eq!(m.exits.is_some(), !p.exits.is_empty());
    }
    // The serving path (folded heads, batch 1) decides as the reference (DynamicNet) does.
    for i in 0..data.len() {
        let b = data.batch(
            &[i],
            &norm,
            &dynas_supernet::Augmentation::NONE,
            &mut dynas_space::seeded_rng(0),
            Device::Cpu,
        );
        for m in family.members() {
            assert_eq!(
                m.classify(&b.images).unwrap(),
                m.classify_reference(&b.images).unwrap()
            );
        }
    }
    let checks = check_points(&family, &data, &norm, None).unwrap();
    assert_eq!(checks[0].measured_exit_rates, vec![1.0, 0.0]);
    approx::assert_relative_eq!(checks[1].measured_exit_rates[0], expected_rate);
    approx::assert_relative_eq!(checks[1].measured_exit_rates[1], 1.0 - expected_rate);
    assert_eq!(checks[2].measured_exit_rates, vec![1.0]);
    assert!(
        checks
            .iter()
            .all(|c| c.host_median_ms > 0.0 && c.images == 60)
    );
    // Without its heads a point with exits is refused, never run as a static network.
    std::fs::remove_file(bundle::exit_heads_path(dir.path(), &g)).unwrap();
    let err = Family::from_bundle(&supernet, dir.path()).unwrap_err();
    assert!(err.to_string().contains("exit_heads"), "{err}");
}
