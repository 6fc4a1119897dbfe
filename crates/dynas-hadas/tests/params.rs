//! HADAS parameters out of range are refused with the parameter and its bound named.

use dynas_hadas::HadasParams;

#[test]
fn hadas_sizes_are_bounded_with_the_parameter_and_the_bound_named() {
    let cases = [
        HadasParams {
            outer_generations: usize::MAX,
            ..HadasParams::default()
        },
        HadasParams {
            outer_population: 1 << 40,
            ..HadasParams::default()
        },
        HadasParams {
            inner_population: 1 << 40,
            ..HadasParams::default()
        },
        HadasParams {
            inner_generations: 1 << 40,
            ..HadasParams::default()
        },
        HadasParams {
            outer_budget: 1 << 40,
            ..HadasParams::default()
        },
    ];
    for (params, name) in cases.into_iter().zip([
        "outer_generations",
        "outer_population",
        "inner_population",
        "inner_generations",
        "outer_budget",
    ]) {
        let err = params.check().unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("..="), "{err}");
    }
    assert!(HadasParams::default().check().is_ok());
}
