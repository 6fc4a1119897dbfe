use std::collections::BTreeMap;

use dynas_cost::OperatingPoint;
use dynas_space::{LayerExpr, SearchSpace};

use super::*;
use dynas_cost::MacsModel;
use dynas_search::{Budget, Executor, Nsga2, Nsga2Config};
use dynas_space::{Activation, PoolKind, TensorShape};

fn vgg() -> Network {
    let input = TensorShape::new(1, 28, 28);
    let c1 = Layer::conv("c1", input, 32, 3, 1, Activation::Relu);
    let c2 = Layer::conv("c2", c1.output(), 64, 3, 1, Activation::Relu);
    let p = Layer::pool("p", PoolKind::Max, c2.output(), 2, 2);
    let r = Layer::residual_block("r", p.output(), 64, 1);
    let g = Layer::global_avg_pool("gap", r.output());
    let fc = Layer::linear("fc", 64, 10);
    Network::new(input, vec![c1, c2, p, r, g, fc])
}

fn config() -> CandidateConfig {
    CandidateParams::default().check().expect("default bounds")
}

#[test]
fn named_rewrites_are_among_the_enumerated_candidates() {
    let layer = Layer::conv(
        "c",
        TensorShape::new(64, 14, 14),
        64,
        3,
        1,
        Activation::Relu,
    );
    let expr = &LayerExpr::from_layer(&layer).terms[0];
    let found = candidates(expr, &config());
    for wanted in [
        Replacement::Factorised(Factorisation::depthwise_separable()),
        Replacement::Factorised(Factorisation::spatially_separable(16)),
        Replacement::Factorised(Factorisation::low_rank(16)),
        Replacement::GroupedShuffle { groups: 4 },
        Replacement::Dilated {
            kernel: 2,
            dilation: 2,
        },
    ] {
        assert!(found.contains(&wanted), "{wanted} missing from {found:?}");
    }
    // Enumeration reaches beyond the fixed list: 1x1 then kxk, pointwise then depthwise.
    assert!(found.iter().any(|r| r.to_string().starts_with("fac_c_chw")));
    assert!(found.iter().any(|r| r.to_string() == "fac_c_dhw"));
    let macs: Vec<u64> = found
        .iter()
        .map(|r| macs_of(&r.apply(expr).expect("legal")))
        .collect();
    assert!(macs.windows(2).all(|w| w[0] <= w[1]), "cheapest first");
    assert!(macs.iter().all(|&m| m * 4 <= expr.macs() * 3));
}

#[test]
fn legality_conditions_reject_what_does_not_fit() {
    let strided = Layer::conv("s", TensorShape::new(6, 8, 8), 9, 3, 2, Activation::Relu);
    let expr = &LayerExpr::from_layer(&strided).terms[0];
    let split = Replacement::Factorised(Factorisation::spatially_separable(2));
    assert!(
        split.legality(expr).is_err(),
        "split spatial reduction at stride 2"
    );
    assert!(
        Replacement::GroupedShuffle { groups: 2 }
            .legality(expr)
            .is_err()
    );
    assert!(
        Replacement::GroupedShuffle { groups: 3 }
            .legality(expr)
            .is_ok()
    );
    let too_big = Replacement::Factorised(Factorisation::low_rank(9));
    assert!(too_big.legality(expr).is_err());
    assert!(
        Replacement::Dilated {
            kernel: 2,
            dilation: 3
        }
        .legality(expr)
        .is_err()
    );
    let dense = &LayerExpr::from_layer(&Layer::linear("fc", 64, 10)).terms[0];
    assert!(
        Replacement::LowRankDense { rank: 8 }
            .legality(dense)
            .is_ok()
    );
    assert!(
        Replacement::LowRankDense { rank: 9 }
            .legality(dense)
            .is_err()
    );
    assert!(
        Replacement::Factorised(Factorisation::depthwise_separable())
            .legality(dense)
            .is_err()
    );
}

#[test]
fn dilated_replacement_keeps_the_receptive_field() {
    let layer = Layer::conv("c", TensorShape::new(8, 16, 16), 8, 5, 1, Activation::Relu);
    let expr = &LayerExpr::from_layer(&layer).terms[0];
    let replaced = Replacement::Dilated {
        kernel: 3,
        dilation: 2,
    }
    .apply(expr)
    .expect("legal");
    assert_eq!(replaced[0].receptive_field(), expr.receptive_field());
    let separable = Replacement::Factorised(Factorisation::spatially_separable(4))
        .apply(expr)
        .expect("legal");
    let composed = separable[0]
        .receptive_field()
        .then(separable[1].receptive_field());
    assert_eq!(composed, expr.receptive_field());
}

#[test]
fn adapted_network_counts_match_the_replacement_terms() {
    let space = GosSpace::new(vgg(), &config()).expect("space");
    let names: Vec<&str> = space.dimensions().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "c1.conv",
            "c2.conv",
            "r.a",
            "r.b",
            "r.shortcut",
            "fc.linear"
        ]
    );
    let genotype = space.smallest();
    let plan = space.plan(&genotype).expect("plan");
    assert_eq!(space.genotype(&plan).expect("round trip"), genotype);
    let adapted = space.decode(&genotype).expect("decode");
    let mut expected = 0;
    for (layer, expr) in space
        .network()
        .layers
        .iter()
        .zip(space.network().layers.iter().map(LayerExpr::from_layer))
    {
        for term in &expr.terms {
            let name = format!("{}.{}", layer.name, term.name);
            let terms = plan.get(&name).apply(term).expect("legal");
            expected += macs_of(&terms);
        }
    }
    assert_eq!(adapted.macs(), expected);
    assert!(adapted.macs() < space.network().macs());
    let original = space.decode(&space.original()).expect("decode");
    assert_eq!(&original, space.network());
}

#[test]
fn nsga2_finds_a_front_from_keep_all_to_cheapest() {
    let space = GosSpace::new(vgg(), &config()).expect("space");
    let errors = UnitErrors::compression_prior(&space);
    let model = MacsModel::new(1e6).expect("model");
    let problem = GosProblem::new(
        space,
        GosLatency::Model(Box::new(model), OperatingPoint::default()),
        errors,
    )
    .expect("problem");
    let strategy = Nsga2::new(Nsga2Config {
        population: 16,
        ..Nsga2Config::default()
    })
    .expect("nsga2");
    let result = Executor::new(
        &problem,
        strategy,
        Budget::evaluations(200).expect("budget"),
    )
    .seed(5)
    .run()
    .expect("search");
    let original = problem.gos_space().original();
    let keep_ms = problem.latency_ms(&original).expect("latency");
    let fastest = result
        .front
        .points
        .iter()
        .map(|p| p.values[0])
        .fold(f64::INFINITY, f64::min);
    assert!(fastest < keep_ms * 0.5, "{fastest} vs {keep_ms}");
    assert!(result.front.points.len() > 2);
}

#[test]
fn lut_predicts_rest_plus_unit_entries_and_names_missing_keys() {
    let space = GosSpace::new(vgg(), &config()).expect("space");
    let mut lut = GosLut {
        batch: 1,
        threads: 2,
        rest_ms: 0.5,
        entries: BTreeMap::new(),
        per_call_ms: 0.0,
        chain_scale: 1.0,
    };
    for (i, unit) in space.units().iter().enumerate() {
        for choice in &unit.choices {
            lut.entries.insert(unit.lut_key(choice), 1.0 + i as f64);
        }
    }
    let plan = space.plan(&space.smallest()).expect("plan");
    let n = space.units().len() as f64;
    approx::assert_relative_eq!(
        lut.predict(&space, &plan).expect("predict"),
        0.5 + n + n * (n - 1.0) / 2.0
    );
    // In-chain cost per operator call: a factorised unit is two calls, a kept one one.
    let original = GosPlan::default();
    let (p_orig, p_small) = (
        lut.predict(&space, &original).expect("original"),
        lut.predict(&space, &plan).expect("plan"),
    );
    let calls = |plan: &GosPlan| -> usize {
        space
            .units()
            .iter()
            .map(|u| u.calls(&plan.get(&u.name(space.network()))))
            .sum()
    };
    assert_eq!(calls(&original), space.units().len());
    assert!(calls(&plan) > calls(&original), "{plan:?}");
    // Whole-network timings made with rest 0.2 and 0.05 ms per call are fitted back.
    let truth = |p: f64, plan: &GosPlan| p - 0.5 + 0.2 + 0.05 * calls(plan) as f64;
    lut.fit_chain(
        &space,
        &[
            (original.clone(), truth(p_orig, &original)),
            (plan.clone(), truth(p_small, &plan)),
        ],
    )
    .expect("fit");
    approx::assert_relative_eq!(lut.per_call_ms, 0.05, epsilon = 1e-9);
    approx::assert_relative_eq!(lut.rest_ms, 0.2, epsilon = 1e-9);
    approx::assert_relative_eq!(
        lut.predict(&space, &plan).expect("plan"),
        truth(p_small, &plan),
        epsilon = 1e-9
    );
    // Noise that makes the chain look cheaper than the parts gives no negative per-call cost.
    lut.fit_chain(
        &space,
        &[(original.clone(), p_orig), (plan.clone(), p_small - 1.0)],
    )
    .expect("fit");
    approx::assert_relative_eq!(lut.per_call_ms, 0.0);
    assert!(lut.rest_ms >= 0.0);
    // With three plans or more a scale on the entries is fitted too: in the running network
    // the operators cost 1.2x their alone-measured time here.
    let mut plans = vec![original.clone(), plan.clone()];
    let mut rng = dynas_space::seeded_rng(3);
    while plans.len() < 5 {
        plans.push(space.plan(&space.sample(&mut rng)).expect("plan"));
    }
    lut.rest_ms = 0.0;
    lut.per_call_ms = 0.0;
    // Entries that differ between choices, so that the plans' sums differ.
    for unit in space.units() {
        for (j, choice) in unit.choices.iter().enumerate() {
            lut.entries
                .insert(unit.lut_key(choice), 0.3 + 0.07 * j as f64);
        }
    }
    let timed: Vec<(GosPlan, f64)> = plans
        .iter()
        .map(|p| {
            let entries = lut.predict(&space, p).expect("entries");
            (p.clone(), 0.1 + 1.2 * entries + 0.03 * calls(p) as f64)
        })
        .collect();
    lut.fit_chain(&space, &timed).expect("fit");
    approx::assert_relative_eq!(lut.chain_scale, 1.2, epsilon = 1e-6);
    approx::assert_relative_eq!(lut.per_call_ms, 0.03, epsilon = 1e-6);
    approx::assert_relative_eq!(lut.rest_ms, 0.1, epsilon = 1e-6);
    for (p, ms) in &timed {
        approx::assert_relative_eq!(lut.predict(&space, p).expect("p"), *ms, epsilon = 1e-9);
    }
    assert!(lut.fit_chain(&space, &[]).is_err());
    assert!(lut.fit_chain(&space, &[(original, f64::NAN)]).is_err());
    lut.entries.clear();
    let err = lut.predict(&space, &plan).expect_err("empty table");
    assert!(err.to_string().contains("no entry"), "{err}");
}
