//! Accuracy predictors trained on real NAS-Bench-201 (genotype, CIFAR-100 accuracy) samples.

mod common;

use dynas_search::predictor::kendall_tau;
use dynas_search::{ForestConfig, ForestPredictor, MlpConfig, MlpPredictor, Problem};
use dynas_space::{Genotype, seeded_rng};
use rand::seq::SliceRandom;

/// Disjoint train / test samples of the table.
type Samples = Vec<(Genotype, f64)>;

fn split(train: usize, test: usize) -> (Samples, Samples) {
    let mut all: Vec<(Genotype, f64)> = common::nb201()
        .evaluations()
        .map(|(g, e)| (g.clone(), e.values[1]))
        .collect();
    all.shuffle(&mut seeded_rng(42));
    let test_set = all.split_off(all.len() - test);
    all.truncate(train);
    (all, test_set)
}

fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    (pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / pred.len() as f64)
        .sqrt()
}

#[test]
fn forest_ranks_unseen_architectures_well() {
    let (train, test) = split(600, 300);
    let space = common::nb201().space();
    let config = ForestConfig {
        // 20 trees left the error within seed noise of the bound; 50 pass on every seed tried.
        trees: 50,
        ..ForestConfig::default()
    };
    let forest = ForestPredictor::fit(space, &train, &config).unwrap();
    let genotypes: Vec<Genotype> = test.iter().map(|(g, _)| g.clone()).collect();
    let truth: Vec<f64> = test.iter().map(|(_, y)| *y).collect();
    let pred = forest.predict(&genotypes).unwrap();
    let mean = train.iter().map(|(_, y)| y).sum::<f64>() / train.len() as f64;
    let baseline = rmse(&vec![mean; truth.len()], &truth);
    let err = rmse(&pred, &truth);
    let tau = kendall_tau(&pred, &truth).expect("predictions vary");
    // A mean predictor has tau 0 and the baseline error; a random one about 1.4x that.
    assert!(
        err < 0.6 * baseline,
        "rmse {err} vs mean-predictor {baseline}"
    );
    assert!(tau > 0.6, "kendall tau {tau}");
}

#[test]
fn mlp_on_one_hot_learns_the_table() {
    let (train, test) = split(600, 300);
    let space = common::nb201().space();
    let config = MlpConfig {
        hidden: vec![32, 32],
        epochs: 25,
        learning_rate: 3e-3,
        batch_size: 64,
        seed: 1,
    };
    let mlp = MlpPredictor::fit(space, &train, &config).unwrap();
    let genotypes: Vec<Genotype> = test.iter().map(|(g, _)| g.clone()).collect();
    let truth: Vec<f64> = test.iter().map(|(_, y)| *y).collect();
    let pred = mlp.predict(&genotypes).unwrap();
    let mean = train.iter().map(|(_, y)| y).sum::<f64>() / train.len() as f64;
    let baseline = rmse(&vec![mean; truth.len()], &truth);
    let err = rmse(&pred, &truth);
    let tau = kendall_tau(&pred, &truth).expect("predictions vary");
    assert!(
        err < 0.6 * baseline,
        "rmse {err} vs mean-predictor {baseline}"
    );
    assert!(tau > 0.55, "kendall tau {tau}");
    // Same seed, same model.
    assert_eq!(MlpPredictor::fit(space, &train, &config).unwrap(), mlp);
}

#[test]
fn bad_samples_are_rejected() {
    let space = common::nb201().space();
    let bad = vec![
        (Genotype::new(vec![0; 6]), 50.0),
        (Genotype::new(vec![9; 6]), 60.0),
    ];
    assert!(ForestPredictor::fit(space, &bad, &ForestConfig::default()).is_err());
    let nan = vec![
        (Genotype::new(vec![0; 6]), f64::NAN),
        (Genotype::new(vec![1; 6]), 60.0),
    ];
    assert!(MlpPredictor::fit(space, &nan, &MlpConfig::default()).is_err());
}
