use super::*;
use approx::assert_relative_eq;

#[test]
fn spearman_and_shares_on_hand_examples() {
    let a = [1.0, 2.0, 3.0, 4.0];
    let m = RegressionMetrics::compute(&a, &[1.05, 2.5, 2.9, 4.0]).unwrap();
    assert_relative_eq!(m.spearman.unwrap(), 1.0, epsilon = 1e-12);
    assert_relative_eq!(m.within_10, 0.75);
    assert_relative_eq!(m.within_1, 0.25);
    let m = RegressionMetrics::compute(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap();
    assert_relative_eq!(m.spearman.unwrap(), -1.0, epsilon = 1e-12);
    assert!(RegressionMetrics::compute(&a, &[1.0]).is_err());
}

#[test]
fn spearman_of_a_constant_series_is_undefined_not_zero() {
    let a = [1.0, 2.0, 3.0, 4.0];
    // Constant predictions (a model that learnt the mean) and constant targets.
    let m = RegressionMetrics::compute(&a, &[2.5; 4]).unwrap();
    assert_eq!(m.spearman, None);
    let m = RegressionMetrics::compute(&[5.0; 4], &a).unwrap();
    assert_eq!(m.spearman, None);
    // The other metrics stay defined, and JSON says `null`, not 0.
    assert_relative_eq!(m.rmse, 7.5f64.sqrt(), epsilon = 1e-12);
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains(r#""spearman":null"#), "{json}");
    // A single row has no ranking either.
    assert_eq!(
        RegressionMetrics::compute(&[1.0], &[1.0]).unwrap().spearman,
        None
    );
}

#[test]
fn one_hot_encoding_and_arch_ids() {
    let e = ArchEncoding::OneHot {
        radices: vec![3, 2],
    };
    assert_eq!(e.features(&[2, 0]).unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0]);
    assert!(e.features(&[3, 0]).is_err());
    assert_eq!(e.genes_from_arch_id("2-1").unwrap(), vec![2, 1]);
    assert_eq!(e.genes_from_arch_id("1").unwrap(), vec![0, 1]);
    let f = ArchEncoding::Nb201.features(&[3, 3, 3, 1, 0, 0]).unwrap();
    assert_eq!(f.len(), ArchEncoding::Nb201.n_features());
    // Only the skip on 3<-0 is live; one path.
    assert_relative_eq!(f[65 + 1], 1.0);
    assert_relative_eq!(f[65 + 3], 0.0);
    assert_relative_eq!(f[72], 1.0);
}
