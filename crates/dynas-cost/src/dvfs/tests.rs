use super::*;
use approx::assert_relative_eq;

#[test]
fn additive_law_is_exact_on_its_own_form() {
    let clocks: Vec<Vec<f64>> = [(1.0, 2.0), (2.0, 2.0), (1.5, 1.0), (0.5, 0.8)]
        .iter()
        .map(|&(a, b)| vec![a, b])
        .collect();
    let y: Vec<f64> = clocks
        .iter()
        .map(|c| 0.3 + 2.0 / c[0] + 0.7 / c[1])
        .collect();
    let params = DvfsLawParams::additive().check().unwrap();
    let law = DvfsScalingLaw::fit_with(&clocks, &y, &params).unwrap();
    assert_relative_eq!(law.constant, 0.3, epsilon = 1e-9);
    assert_relative_eq!(
        law.predict(&[3.0, 3.0]),
        0.3 + 2.0 / 3.0 + 0.7 / 3.0,
        epsilon = 1e-9
    );
    assert!(DvfsScalingLaw::fit_with(&clocks[..2], &y[..2], &params).is_err());
}

#[test]
fn soft_roofline_recovers_a_saturating_law() {
    let truth = DvfsScalingLaw {
        constant: 2.0,
        per_clock: vec![40.0],
        floor: 50.0,
        sharpness: 4.0,
    };
    let clocks: Vec<Vec<f64>> = [0.12, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3]
        .iter()
        .map(|&f| vec![f])
        .collect();
    let y: Vec<f64> = clocks.iter().map(|c| truth.predict(c)).collect();
    let law = DvfsScalingLaw::fit(&clocks, &y).unwrap();
    for f in [0.2, 0.6, 1.0, 1.25] {
        assert_relative_eq!(law.predict(&[f]), truth.predict(&[f]), max_relative = 5e-3);
    }
    // Saturates: faster clocks stop helping, unlike 1/f.
    assert!(law.predict(&[1.3]) > 0.95 * law.predict(&[1.0]));
    let moved = law.clone().with_floor_as_clock(2.0);
    assert_relative_eq!(
        moved.predict(&[0.7, 2.0]),
        law.predict(&[0.7]),
        max_relative = 1e-12
    );
    assert!(moved.predict(&[0.7, 1.0]) > law.predict(&[0.7]));
}

#[test]
fn bad_params_and_points_are_typed_errors() {
    let floor_additive = DvfsLawParams {
        sharpness: 1.0,
        pick_sharpness: false,
        floor: true,
        relative_error: false,
    };
    assert!(matches!(
        floor_additive.check(),
        Err(CostError::InvalidParameter { name, .. }) if name == "floor"
    ));
    let bad = DvfsLawParams {
        sharpness: f64::NAN,
        ..DvfsLawParams::default()
    };
    assert!(bad.check().is_err());
    let r = DvfsScalingLaw::fit(&[vec![1.0], vec![2.0], vec![-1.0]], &[1.0, 2.0, 3.0]);
    assert!(matches!(r, Err(CostError::Fit { .. })));
    assert!(DvfsPowerLaw::fit(&[1.0, 2.0], &[1.0, 2.0], 2.0).is_err());
}

#[test]
fn power_law_recovers_a_knee_voltage_curve() {
    let truth = DvfsPowerLaw {
        reference_hz: 1e9,
        static_w: 0.5,
        dynamic_w: 3.0,
        knee: 0.5,
        voltage_slope: 1.0,
    };
    let clocks: Vec<f64> = (1..=12).map(|i| i as f64 * 1e8).collect();
    let power: Vec<f64> = clocks.iter().map(|&f| truth.power_w(f)).collect();
    let law = DvfsPowerLaw::fit(&clocks, &power, 1e9).unwrap();
    for &f in &clocks {
        assert_relative_eq!(law.power_w(f), truth.power_w(f), max_relative = 1e-6);
    }
}
