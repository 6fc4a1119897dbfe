//! Depth-adaptive nets: switching writes back exactly the stored statistics of a depth, and
//! a switch needs no data (no recalibration at run time).

mod common;

use dynas_goldennas::{DepthAdaptiveNet, fashion_mnist_space};
use dynas_space::SearchSpace;
use dynas_supernet::{BnMode, Supernet, SupernetConfig};
use tch::{Device, Kind, Tensor};

#[test]
fn stored_batch_norm_is_switched_per_depth_exactly() {
    let _turn = dynas_testkit::libtorch_turn();
    tch::manual_seed(5);
    let space = fashion_mnist_space();
    let supernet = Supernet::new(space.clone(), SupernetConfig::default(), Device::Cpu).unwrap();
    let data = common::images(96, 1);
    let norm = data.channel_stats();
    let mut net = DepthAdaptiveNet::new(&space, &space.largest()).unwrap();
    // Stage depths 2/3/4 and 2/3: six configurations, deepest first.
    let configs = net.configurations().to_vec();
    assert_eq!(configs.len(), 6);
    let macs: Vec<u64> = configs
        .iter()
        .map(|g| space.decode(g).unwrap().macs())
        .collect();
    assert!(macs.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(configs[0], space.canonical(&space.largest()).unwrap());
    assert!(net.switch(&supernet, 0).is_err(), "nothing stored yet");

    net.calibrate(&supernet, &data, &norm, 1).unwrap();
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let logits = |i: usize| {
        let n = space.decode(&configs[i]).unwrap();
        tch::no_grad(|| supernet.forward(&n, &x, BnMode::Eval).unwrap())
    };
    net.switch(&supernet, 0).unwrap();
    let deepest = logits(0);
    for i in [5, 2, 0, 3, 1, 4] {
        net.switch(&supernet, i).unwrap();
        let n = space.decode(&configs[i]).unwrap();
        let now = supernet.bn_stats(&n).unwrap();
        let stored = net.store().get(&configs[i]).unwrap();
        assert_eq!(now.entries.len(), stored.entries.len());
        for ((a, m, v), (b, sm, sv)) in now.entries.iter().zip(&stored.entries) {
            assert_eq!(a, b);
            assert!(m.equal(sm) && v.equal(sv), "{a} of configuration {i}");
        }
    }
    // Back at full depth: the same outputs as before the other switches.
    net.switch(&supernet, 0).unwrap();
    assert!(logits(0).equal(&deepest));
    // The configurations do have different statistics after the skipped blocks (the
    // variance: a skipped residual branch is batch-normalised to zero mean).
    let fe = |i: usize| {
        let s = net.store().get(&configs[i]).unwrap();
        s.entries
            .iter()
            .find(|(n, _, _)| n == "final_expand.bn")
            .map(|(_, _, v)| v.copy())
            .unwrap()
    };
    assert!(!fe(0).allclose(&fe(5), 1e-6, 1e-6, false));
    assert!(net.switch(&supernet, 6).is_err());
}
