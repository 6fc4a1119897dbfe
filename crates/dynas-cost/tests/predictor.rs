//! Learned predictors on the shipped real data.

use std::collections::BTreeMap;

use dynas_cost::gbdt::GbdtParams;
use dynas_cost::lut::parse_ofa_key;
use dynas_cost::predictor::{
    ArchEncoding, ArchPredictor, LayerPredictor, Learner, RegressionMetrics, TargetScale,
};
use dynas_cost::table::read_arch_targets;
use dynas_cost::{ComputeUnit, CostModel, LayerLut, OperatingPoint};
use dynas_space::Network;
use rand::seq::SliceRandom;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dynas-data/data");

fn split(n: usize, train: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut dynas_space::seeded_rng(seed));
    let test = order.split_off(train);
    (order, test)
}

#[test]
fn simulated_accelerators_are_predicted_almost_exactly() {
    for col in ["eyeriss_latency", "fpga_latency"] {
        let data = read_arch_targets(format!("{DATA}/nb201/nb201_hw.csv"), col).unwrap();
        assert_eq!((data.cells.len(), data.skipped), (15625, 0));
        let (train, test) = split(data.cells.len(), 200, 1);
        let genes: Vec<Vec<usize>> = train
            .iter()
            .map(|&i| data.cells[i].ops().to_vec())
            .collect();
        let y: Vec<f64> = train.iter().map(|&i| data.targets[i]).collect();
        let model = ArchPredictor::fit(
            ArchEncoding::Nb201,
            &genes,
            &y,
            Learner::Ridge { lambda: 1e-6 },
            TargetScale::Linear,
        )
        .unwrap();
        let pred: Vec<f64> = test
            .iter()
            .map(|&i| model.predict(&data.cells[i].ops()).unwrap())
            .collect();
        let actual: Vec<f64> = test.iter().map(|&i| data.targets[i]).collect();
        let m = RegressionMetrics::compute(&actual, &pred).unwrap();
        assert!(m.within_1 >= 0.999, "{col}: {m:?}");
    }
}

#[test]
fn measured_device_predictor_beats_the_mean_and_round_trips_json() {
    let data = read_arch_targets(format!("{DATA}/nb201/nb201_hw.csv"), "raspi4_latency").unwrap();
    let (train, test) = split(data.cells.len(), 300, 2);
    let test = &test[..1500];
    let genes: Vec<Vec<usize>> = train
        .iter()
        .map(|&i| data.cells[i].ops().to_vec())
        .collect();
    let y: Vec<f64> = train.iter().map(|&i| data.targets[i]).collect();
    let learner = Learner::RidgeThenGbdt {
        lambda: 1e-3,
        gbdt: GbdtParams {
            n_trees: 60,
            learning_rate: 0.1,
            ..GbdtParams::default()
        },
    };
    let model = ArchPredictor::fit(
        ArchEncoding::Nb201,
        &genes,
        &y,
        learner,
        TargetScale::Linear,
    )
    .unwrap();
    let actual: Vec<f64> = test.iter().map(|&i| data.targets[i]).collect();
    let pred: Vec<f64> = test
        .iter()
        .map(|&i| model.predict(&data.cells[i].ops()).unwrap())
        .collect();
    let m = RegressionMetrics::compute(&actual, &pred).unwrap();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let base = RegressionMetrics::compute(&actual, &vec![mean; actual.len()]).unwrap();
    assert!(
        m.spearman.is_some_and(|s| s > 0.9) && m.within_10 > 0.4 && m.rmse < 0.5 * base.rmse,
        "{m:?} vs mean {base:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raspi4.json");
    model.save(&path).unwrap();
    let back = ArchPredictor::load(&path).unwrap();
    let net = Network::new(dynas_space::TensorShape::new(3, 32, 32), vec![])
        .with_arch_id(data.cells[test[0]].to_string());
    let c = back.estimate(&net, &OperatingPoint::default()).unwrap();
    assert_eq!(c.latency_ms, pred[0]);
    std::fs::write(&path, "{\"encoding\": 3}").unwrap();
    let err = ArchPredictor::load(&path).unwrap_err().to_string();
    assert!(err.contains("raspi4.json"), "{err}");
}

#[test]
fn layer_predictor_generalises_to_an_unseen_resolution() {
    let dir = format!("{DATA}/lut/dynamic-ofa-xavier-nx/cpu");
    let mut tables = BTreeMap::new();
    for r in [160, 176, 192, 208, 224] {
        tables.insert(
            r,
            LayerLut::from_ofa_file(format!("{dir}/{r}_lookup_table.json")).unwrap(),
        );
    }
    let held_out = 192;
    let point = OperatingPoint::default();
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (r, lut) in &tables {
        for key in lut.keys() {
            let layer = parse_ofa_key(key).unwrap();
            let lat = lut.get(key).unwrap().latency_ms;
            if *r == held_out {
                test.push((layer, lat))
            } else {
                train.push((layer, point.clone(), lat))
            }
        }
    }
    let params = GbdtParams {
        n_trees: 150,
        learning_rate: 0.1,
        max_depth: 5,
        min_samples_leaf: 2,
        ..GbdtParams::default()
    };
    let model = LayerPredictor::fit(&train, ComputeUnit::Cpu, &params).unwrap();
    let actual: Vec<f64> = test.iter().map(|t| t.1).collect();
    let pred: Vec<f64> = test
        .iter()
        .map(|t| model.predict_layer(&t.0, &point))
        .collect();
    let m = RegressionMetrics::compute(&actual, &pred).unwrap();
    println!("layer predictor on unseen resolution {held_out}: {m:?}");
    assert!(
        m.spearman.is_some_and(|s| s > 0.95) && m.within_20 > 0.7,
        "{m:?}"
    );
}
