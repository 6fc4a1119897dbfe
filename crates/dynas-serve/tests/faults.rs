//! Serving and HADAS parameters at their limits (issue 32): a window too large to hold, an
//! empty image set, a trace scaled so short that nothing would run, a genotype outside the
//! space, HADAS sizes that wrapped or allocated without bound.

// The supernet tests' fixtures (tiny data set, randomised variables), shared rather than copied.
#[path = "../../dynas-supernet/tests/common/mod.rs"]
mod common;
mod family;

use common::tiny_dataset;
use dynas_dvfs::{CoRunnerParams, LoadTrace};
use dynas_serve::{Family, ServeParams, ServePolicy, presample, serve};
use dynas_space::Genotype;
use dynas_supernet::{Dataset, Supernet, SupernetConfig};
use dynas_testkit::libtorch_turn;
use family::{params, tiny_space};
use tch::Device;

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
