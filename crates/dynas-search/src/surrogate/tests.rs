//! Unit tests of `surrogate`.

use super::batch::{Fantasy, domination_gap, hvi_2d, sorted_2d};
use super::gp::*;
use super::models::normal_cdf;
use super::*;
use crate::pareto::hypervolume;
use approx::assert_relative_eq;

#[test]
fn params_are_checked() {
    assert!(SurrogateParams::default().check().is_ok());
    for bad in [
        SurrogateParams {
            initial: 1,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            batch: 0,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            exploration: f64::NAN,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            exploit_share: 1.5,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            exploit_share: -0.1,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            pool: 3,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            evolve_rounds: 0,
            ..SurrogateParams::default()
        },
        SurrogateParams {
            max_train: 3,
            ..SurrogateParams::default()
        },
    ] {
        assert!(
            matches!(bad.check(), Err(SearchError::InvalidParameter { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn hvi_2d_matches_the_hypervolume_difference() {
    let front = vec![vec![0.1, 0.8], vec![0.4, 0.5], vec![0.7, 0.2]];
    let sorted = sorted_2d(&front);
    let reference = [1.1, 1.1];
    for p in [
        [0.0, 0.9],
        [0.3, 0.3],
        [0.5, 0.6],
        [0.05, 0.05],
        [1.0, 0.1],
        [0.9, 0.0],
        [1.2, 0.0],
    ] {
        let mut with = front.clone();
        with.push(p.to_vec());
        let expected =
            hypervolume(&with, &reference).unwrap() - hypervolume(&front, &reference).unwrap();
        assert_relative_eq!(hvi_2d(&sorted, p, reference), expected, epsilon = 1e-12);
    }
}

#[test]
fn domination_gap_is_zero_off_the_dominated_region() {
    let front = vec![vec![0.2, 0.5], vec![0.5, 0.2]];
    assert_relative_eq!(domination_gap(&front, &[0.1, 0.9]), 0.0);
    // (0.6, 0.6) must move by 0.1 to leave both points' dominated regions.
    assert_relative_eq!(domination_gap(&front, &[0.6, 0.6]), 0.1, epsilon = 1e-12);
    assert_relative_eq!(domination_gap(&front, &[0.9, 0.6]), 0.4, epsilon = 1e-12);
}

#[test]
fn normal_cdf_matches_known_values() {
    assert_relative_eq!(normal_cdf(0.0), 0.5, epsilon = 1e-7);
    assert_relative_eq!(normal_cdf(1.959_964), 0.975, epsilon = 1e-6);
    assert_relative_eq!(normal_cdf(-1.0), 0.158_655_25, epsilon = 1e-6);
}

#[test]
fn gp_interpolates_an_additive_function_and_is_unsure_far_away() {
    // y = sum of per-gene effects over a 4 x 4 x 4 grid; train on the genotypes with an
    // even gene sum (every choice of every gene appears), predict the others.
    let effects = [
        [0.0, 1.0, 3.0, 2.0],
        [0.5, 0.0, 1.5, 4.0],
        [2.0, 1.0, 0.0, 0.5],
    ];
    let all: Vec<Vec<usize>> = (0..64).map(|i| vec![i / 16, (i / 4) % 4, i % 4]).collect();
    let value = |g: &[usize]| g.iter().enumerate().map(|(k, &v)| effects[k][v]).sum();
    let even = |g: &Vec<usize>| g.iter().sum::<usize>() % 2 == 0;
    let train: Vec<(&[usize], f64)> = all
        .iter()
        .filter(|g| even(g))
        .map(|g| (g.as_slice(), value(g)))
        .collect();
    let gp = Gp::fit(3, &train).expect("fits");
    for g in all.iter().filter(|g| !even(g)) {
        assert_relative_eq!(gp.mean(g), value(g), epsilon = 0.1);
    }
    // At a training point the sd is far below the prior's.
    let (_, sd) = gp.mean_sd(&all[0]);
    assert!(sd < 0.1 * gp.prior_sd(), "{sd} vs {}", gp.prior_sd());
}

#[test]
fn fantasised_points_shrink_the_sd_as_a_refit_with_them_would() {
    // Train on a few genotypes of a 3 x 3 x 3 grid, fantasise two more, and compare each
    // candidate's updated sd with the posterior sd computed from scratch with the fantasised
    // points in the training set (same kernel, noise and signal).
    let all: Vec<Vec<usize>> = (0..27).map(|i| vec![i / 9, (i / 3) % 3, i % 3]).collect();
    let train: Vec<(&[usize], f64)> = [0usize, 5, 13, 22, 26]
        .iter()
        .map(|&i| (all[i].as_slice(), (i as f64 * 0.37).sin()))
        .collect();
    let gp = Gp::fit(3, &train).expect("fits");
    let models = Models {
        objectives: vec![gp],
        violation: None,
        train: train.iter().map(|t| t.0.to_vec()).collect(),
        rows: vec![None, None],
        scale: vec![(0.0, 1.0)],
        front: Vec::new(),
        exploration: 1.0,
    };
    let candidates: Vec<Genotype> = all.iter().map(|g| Genotype::new(g.clone())).collect();
    let mut predictions = models.predict(&candidates);
    let mut fantasy = Fantasy {
        models: &models,
        points: Vec::new(),
    };
    let fantasised = [9usize, 17];
    for &f in &fantasised {
        let chosen = predictions[f].clone();
        fantasy.add(candidates[f].genes(), &chosen);
        for (p, g) in predictions.iter_mut().zip(&candidates) {
            fantasy.update(g.genes(), p, models.exploration);
        }
    }
    let gp = &models.objectives[0];
    let points: Vec<&[usize]> = train
        .iter()
        .map(|t| t.0)
        .chain(fantasised.iter().map(|&f| all[f].as_slice()))
        .collect();
    let n = points.len();
    let mut k = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            k[i * n + j] = gp.table[hamming(points[i], points[j])];
        }
        k[i * n + i] += gp.noise;
    }
    cholesky(&mut k, n).expect("positive definite");
    for (g, p) in all.iter().zip(&predictions) {
        let mut row: Vec<f64> = points.iter().map(|t| gp.table[hamming(g, t)]).collect();
        forward(&k, n, &mut row);
        let explained: f64 = row.iter().map(|v| v * v).sum();
        let sd = gp.y_std * (gp.signal * (gp.table[0] - explained)).max(0.0).sqrt();
        assert_relative_eq!(p.sd[0], sd, epsilon = 1e-9);
        assert_relative_eq!(p.optimistic[0], p.mean[0] - p.sd[0], epsilon = 1e-12);
    }
    // A fantasised point's own sd fell well below the prior's.
    assert!(predictions[9].sd[0] < 0.5 * gp.prior_sd());
}

#[test]
fn solving_in_lanes_gives_the_same_bits_as_one_at_a_time() {
    let all: Vec<Vec<usize>> = (0..64).map(|i| vec![i / 16, (i / 4) % 4, i % 4]).collect();
    let train: Vec<(&[usize], f64)> = all
        .iter()
        .step_by(3)
        .map(|g| (g.as_slice(), (g[0] as f64 * 1.3 - g[2] as f64).sin()))
        .collect();
    let gp = Gp::fit(3, &train).expect("fits");
    // A full block of lanes and a partial one.
    for block in [&all[..LANES], &all[40..43]] {
        let distances: Vec<Vec<usize>> = block.iter().map(|g| gp.distances(g)).collect();
        let refs: Vec<&[usize]> = distances.iter().map(Vec::as_slice).collect();
        for (d, lane) in distances.iter().zip(gp.mean_sd_solved_lanes(&refs)) {
            let one = gp.mean_sd_solved_at(d);
            assert_eq!(one.0.to_bits(), lane.0.to_bits());
            assert_eq!(one.1.to_bits(), lane.1.to_bits());
            assert_eq!(one.2, lane.2);
        }
    }
}
