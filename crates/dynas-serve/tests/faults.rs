//! Serving and HADAS parameters at their limits (issue 32): a window too large to hold, an
//! empty image set, a trace scaled so short that nothing would run, a genotype outside the
//! space, HADAS sizes that wrapped or allocated without bound.

mod common;

use common::tiny_dataset;
use dynas_dvfs::{CoRunnerParams, LoadTrace};
use dynas_serve::{Family, PresampleParams, ServeParams, ServePolicy, presample, serve};
use dynas_space::{
    Activation, ChoiceScope, FinalExpand, FirstBlockSpec, Genotype, HeadSpec, MbConvSpace,
    StageSpec,
};
use dynas_supernet::{Dataset, Supernet, SupernetConfig};
use dynas_testkit::libtorch_turn;
use tch::Device;

fn tiny_space() -> MbConvSpace {
    let stage = |name: &str, widths: Vec<usize>, stride| StageSpec {
        name: name.to_string(),
        widths,
        depths: vec![1, 2],
        kernels: vec![3, 5],
        expand_ratios: vec![2, 4],
        stride,
        se: false,
        activation: Activation::Relu,
        scope: ChoiceScope::PerBlock,
    };
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
    MbConvSpace::new("tiny-dofa", head, vec![stage("s1", vec![8, 16], 2)]).unwrap()
}

fn params() -> PresampleParams {
    PresampleParams {
        samples: 8,
        family_size: 3,
        threads: vec![1, 2],
        serve_threads: 1,
        warmup: 1,
        repeats: 3,
        calibration_batches: 2,
        batch_size: 16,
        seed: 5,
    }
}

#[test]
fn serving_refuses_what_would_panic_or_serve_nothing() {
    let _turn = libtorch_turn();
    tch::manual_seed(2);
    let supernet = Supernet::new(tiny_space(), SupernetConfig::default(), Device::Cpu).unwrap();
    let (calibration, validation) = (tiny_dataset(64, 3), tiny_dataset(40, 4));
    let norm = calibration.channel_stats();
    let out = presample(
        &supernet,
        &calibration,
        &validation,
        &norm,
        &params().check().unwrap(),
    )
    .unwrap();
    let family = Family::from_deployment(&supernet, &out.bn, &out.deployment).unwrap();
    let test = tiny_dataset(30, 5);
    let base = ServeParams {
        target_ms: family.fastest_idle_ms() * 3.0,
        window: 4,
        duration_s: 0.3,
        images: 30,
        ..ServeParams::default()
    };
    // A window too large to hold: refused, not an allocation failure.
    let huge = ServeParams {
        window: usize::MAX,
        ..base.clone()
    };
    let err = serve(&family, &test, &norm, ServePolicy::Reactive, &huge, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("window"), "{err}");
    // No images to serve: refused, not an index panic.
    let empty = Dataset::from_parts(Vec::new(), Vec::new(), (1, 16, 16), 5).unwrap();
    let err = serve(&family, &empty, &norm, ServePolicy::Reactive, &base, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no images"), "{err}");
    // A trace scaled so short that not one window fits: refused, not an empty report.
    let trace = LoadTrace::new("blip", vec![0.0, 0.1], vec![0.0, 0.6]).unwrap();
    let co = CoRunnerParams {
        threads: 1,
        time_scale: 1e-9,
        ..CoRunnerParams::default()
    };
    let err = serve(
        &family,
        &test,
        &norm,
        ServePolicy::Reactive,
        &base,
        Some((&trace, &co)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("time_scale") && err.contains("nothing would be served"),
        "{err}"
    );
    // A genotype outside the space: said so, not "no stored batch-norm statistics".
    let mut outside = out.deployment.clone();
    let n = outside.points[0].genotype.len();
    outside.points[0].genotype = Genotype::new(vec![99; n]);
    let Err(err) = Family::from_deployment(&supernet, &out.bn, &outside) else {
        panic!("a genotype outside the space was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("out of the range of space"), "{err}");
}
