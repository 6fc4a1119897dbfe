//! HADAS's inner accounting on measured-style exit tables: thresholds calibrated on one half of
//! the samples, accuracy and expected cost weighted by where held-out inputs leave.

use approx::assert_relative_eq;
use dynas_cost::{ComputeUnit, DeviceProfile};
use dynas_exits::{ExitCosts, ExitHead, ExitPosition, ExitTable};
use dynas_hadas::{DynamicEvaluator, ExitsEvaluator};
use dynas_search::Result;
use dynas_space::{Activation, Genotype, MbConvSpace, Network, SearchSpace};
use dynas_testkit::ToyDvfsModel;

const SAMPLES: usize = 400;
/// Samples 0..240 are easy: exit 0 is sure (0.99) and right on them.
const EASY: usize = 240;

fn positions() -> Vec<ExitPosition> {
    vec![ExitPosition::new("early", 2), ExitPosition::new("late", 5)]
}

/// Exit 0 pays: confident and right on the easy 60 %, unsure and wrong on the rest. Exit 1 does
/// not: confident (0.95) everywhere but right only where the final classifier is wrong.
fn table(_: &Genotype, _: &Network) -> Result<ExitTable> {
    let final_correct: Vec<bool> = (0..SAMPLES).map(|s| s % 20 < 18).collect();
    let exit0_correct: Vec<bool> = (0..SAMPLES).map(|s| s < EASY && final_correct[s]).collect();
    let exit0_conf: Vec<f64> = (0..SAMPLES)
        .map(|s| if s < EASY { 0.99 } else { 0.2 })
        .collect();
    let exit1_correct: Vec<bool> = final_correct.iter().map(|c| !c).collect();
    Ok(ExitTable::from_scores(
        positions(),
        vec![exit0_conf, vec![0.95; SAMPLES], vec![0.9; SAMPLES]],
        vec![exit0_correct, exit1_correct, final_correct],
    )?)
}

fn device() -> DeviceProfile {
    DeviceProfile::new(
        "toy",
        ComputeUnit::Gpu,
        vec![],
        vec![500_000_000, 1_000_000_000],
        vec![],
    )
    .unwrap()
}

/// How the tests hand out exit tables.
type TableFn = fn(&Genotype, &Network) -> Result<ExitTable>;

fn evaluator() -> ExitsEvaluator<MbConvSpace, TableFn, ToyDvfsModel> {
    ExitsEvaluator::new(
        MbConvSpace::ofa_mnist(),
        table as TableFn,
        ExitHead::new(16, Activation::Relu, 10).unwrap(),
        ToyDvfsModel::default(),
        device(),
    )
}

#[test]
fn an_exit_that_pays_is_weighted_by_its_exit_rate() {
    let space = MbConvSpace::ofa_mnist();
    let g = space.largest();
    let network = space.decode(&g).unwrap();
    let eval = evaluator();
    let point = device().max_operating_point();
    let static_metrics = eval.evaluate(&g, &[], &point).unwrap();
    let with_exit = eval.evaluate(&g, &[0], &point).unwrap();
    // Held-out (odd) samples: the same 90 % accuracy with the exit as without.
    assert_relative_eq!(static_metrics.error, 10.0, epsilon = 1e-9);
    assert_relative_eq!(with_exit.error, 10.0, epsilon = 1e-9);
    // 60 % of held-out inputs leave at exit 0 (prefix + head); the rest pay the whole backbone
    // and the head they passed.
    let costs = ExitCosts::compute(
        &network,
        &positions(),
        &ExitHead::new(16, Activation::Relu, 10).unwrap(),
        &ToyDvfsModel::default(),
        &point,
    )
    .unwrap();
    let early = &costs.positions()[0];
    let expected = 0.6 * (early.prefix.latency_ms + early.head.latency_ms)
        + 0.4 * (costs.full().latency_ms + early.head.latency_ms);
    assert_relative_eq!(with_exit.latency_ms, expected, max_relative = 1e-9);
    // At 1 GHz the toy model draws 3 W.
    assert_relative_eq!(with_exit.energy_mj, 3.0 * expected, max_relative = 1e-9);
    assert!(with_exit.energy_mj < static_metrics.energy_mj);
    let deployed = eval.deployed_exits(&g, &[0], &point).unwrap();
    assert_eq!(deployed.len(), 1);
    assert_eq!(deployed[0].after_layer.index(), 2);
    assert_relative_eq!(deployed[0].exit_rate, 0.6, epsilon = 1e-9);
    assert!(deployed[0].threshold > 0.2 && deployed[0].threshold <= 0.99);
}

#[test]
fn an_exit_that_does_not_pay_is_switched_off_and_costs_nothing() {
    let g = MbConvSpace::ofa_mnist().largest();
    let eval = evaluator();
    for point in [
        device().max_operating_point(),
        device().min_operating_point(),
    ] {
        let static_metrics = eval.evaluate(&g, &[], &point).unwrap();
        let with_exit = eval.evaluate(&g, &[1], &point).unwrap();
        assert_eq!(with_exit, static_metrics);
        assert!(eval.deployed_exits(&g, &[1], &point).unwrap().is_empty());
        // Both exits offered: only the one that pays is kept.
        let both = eval.deployed_exits(&g, &[0, 1], &point).unwrap();
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].after_layer.index(), 2);
    }
}
