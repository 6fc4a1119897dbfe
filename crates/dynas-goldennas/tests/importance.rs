//! Channel importance sorting: the largest subnet is unchanged and a narrow width keeps the
//! most important channels.

use dynas_goldennas::{fashion_mnist_space, sort_channels};
use dynas_space::SearchSpace;
use dynas_supernet::{BnMode, Supernet, SupernetConfig};
use tch::{Device, Kind, Tensor};

/// L1 norm of each output channel of stage 1 (the rows of its blocks' projections, summed).
fn stage1_importance(supernet: &Supernet) -> Vec<f64> {
    let vars = supernet.var_store().variables();
    let mut sum: Option<Tensor> = None;
    for j in 0..4 {
        let w = &vars[&format!("stage1.block{j}.project.conv.weight")];
        let rows = w
            .detach()
            .abs()
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double);
        sum = Some(match sum {
            Some(s) => s + rows,
            None => rows,
        });
    }
    Vec::<f64>::try_from(&sum.unwrap()).unwrap()
}

#[test]
fn width_slicing_keeps_the_most_important_channels() {
    let _turn = dynas_testkit::libtorch_turn();
    tch::manual_seed(3);
    let space = fashion_mnist_space();
    let supernet = Supernet::new(space.clone(), SupernetConfig::default(), Device::Cpu).unwrap();
    let x = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let largest = space.decode(&space.largest()).unwrap();
    let before = tch::no_grad(|| supernet.forward(&largest, &x, BnMode::Eval).unwrap());
    let importance = stage1_importance(&supernet);

    let groups = sort_channels(&supernet).unwrap();
    // Expanded channels of 4 + 3 blocks, the outputs of both stages, the final expand.
    assert_eq!(groups.len(), 4 + 3 + 2 + 1);
    for g in &groups {
        assert!(
            g.importance.windows(2).all(|w| w[0] >= w[1]),
            "{} not in decreasing importance",
            g.group
        );
        let mut order = g.order.clone();
        order.sort_unstable();
        assert_eq!(
            order,
            (0..g.channels).collect::<Vec<_>>(),
            "{} is a permutation",
            g.group
        );
    }
    // The largest subnet computes the same function.
    let after = tch::no_grad(|| supernet.forward(&largest, &x, BnMode::Eval).unwrap());
    assert!(after.allclose(&before, 1e-4, 1e-5, false));

    // Stage 1's narrowest width (16 of 32 channels) now holds its 16 most important channels.
    let mut ranked: Vec<usize> = (0..importance.len()).collect();
    ranked.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]));
    let stage1 = groups.iter().find(|g| g.group == "stage1 output").unwrap();
    let mut kept = stage1.order[..16].to_vec();
    kept.sort_unstable();
    let mut top = ranked[..16].to_vec();
    top.sort_unstable();
    assert_eq!(kept, top);
    let now = stage1_importance(&supernet);
    assert!(now.windows(2).all(|w| w[0] >= w[1] - 1e-9));

    // Sorting again changes nothing.
    let again = sort_channels(&supernet).unwrap();
    for g in &again {
        assert_eq!(g.order, (0..g.channels).collect::<Vec<_>>(), "{}", g.group);
    }
}

#[test]
fn the_width_elastic_space_spans_more_than_8x_in_macs() {
    let space = fashion_mnist_space();
    let largest = space.decode(&space.largest()).unwrap().macs();
    let smallest = space.decode(&space.smallest()).unwrap().macs();
    assert!(largest >= 8 * smallest, "{largest} vs {smallest}");
    assert_eq!(space.name(), "fmnist-elastic-width");
    assert!(dynas_space::builtin_space("fmnist-elastic-width").is_some());
}
