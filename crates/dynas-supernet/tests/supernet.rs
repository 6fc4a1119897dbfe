//! Supernet behaviour: extraction equivalence, weight sharing under training, BN
//! recalibration and stores, exact resume, the accuracy oracle.

mod common;

use common::{randomise, tiny_dataset};
use std::collections::HashMap;

use dynas_space::{
    Activation, ChoiceScope, FinalExpand, FirstBlockSpec, Genotype, HeadSpec, MbConvSpace,
    SearchSpace, StageSpec, seeded_rng,
};
use dynas_supernet::{
    AccuracyEstimator, AccuracySample, Augmentation, Batch, BnMode, BnStore, ElasticDim,
    Normalization, Schedule, SubnetSampler, Supernet, SupernetConfig, TrainParams, Trainer,
    cosine_lr, write_samples_csv, write_samples_json,
};
use tch::{Device, Kind, Tensor};

/// libtorch's random generator (and its thread count) is process-wide, and the test harness runs
/// tests on parallel threads: the tests here that seed and draw from it take turns.
static LIBTORCH_GLOBALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn libtorch_turn() -> std::sync::MutexGuard<'static, ()> {
    LIBTORCH_GLOBALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tiny space with every elastic kind: widths of the first conv, stage widths (channel
/// scaling), depth, per-block kernel / expand, SE, two resolutions.
fn tiny_space() -> MbConvSpace {
    let stage = |name: &str, widths: Vec<usize>, stride| StageSpec {
        name: name.to_string(),
        widths,
        depths: vec![1, 2, 3],
        kernels: vec![3, 5, 7],
        expand_ratios: vec![2, 3],
        stride,
        se: true,
        activation: Activation::HardSwish,
        scope: ChoiceScope::PerBlock,
    };
    let head = HeadSpec {
        in_channels: 1,
        resolutions: vec![12, 16],
        first_conv_widths: vec![4, 8],
        first_conv_stride: 2,
        first_conv_activation: Activation::Relu,
        first_block: Some(FirstBlockSpec {
            width: 8,
            kernel: 3,
            expand_ratio: 1,
            stride: 1,
            se: false,
            activation: Activation::Relu,
        }),
        final_expand: FinalExpand::Widths(vec![16, 24]),
        feature_mix_widths: Some(vec![16, 32]),
        tail_activation: Activation::HardSwish,
        num_classes: 5,
        channel_divisor: 4,
        projection_shortcuts: true,
    };
    MbConvSpace::new(
        "tiny",
        head,
        vec![stage("s1", vec![8, 12], 2), stage("s2", vec![12, 16], 1)],
    )
    .unwrap()
}

fn supernet(space: MbConvSpace, seed: i64) -> Supernet {
    tch::manual_seed(seed);
    let s = Supernet::new(space, SupernetConfig::default(), Device::Cpu).unwrap();
    // Make kernel transforms and BN statistics non-trivial, so equality tests can fail.
    tch::no_grad(|| {
        // In name order: the draws from libtorch's generator must land on the same tensors in
        // every run.
        let mut vars: Vec<(String, Tensor)> = s.var_store().variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut t) in vars {
            if name.ends_with("_matrix") || name.ends_with("running_mean") {
                t += Tensor::randn_like(&t) * 0.1;
            } else if name.ends_with("running_var") {
                t += Tensor::rand_like(&t);
            }
        }
    });
    s
}

fn snapshot(s: &Supernet) -> HashMap<String, Tensor> {
    s.var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect()
}

#[test]
fn supernet_forward_equals_extracted_forward() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let sn = supernet(space.clone(), 1);
    let mut rng = seeded_rng(3);
    let mut genotypes = vec![space.smallest(), space.largest()];
    genotypes.extend((0..4).map(|_| space.sample(&mut rng)));
    let x = Tensor::randn([3, 1, 16, 16], (Kind::Float, Device::Cpu));
    for g in &genotypes {
        let net = space.decode(g).unwrap();
        let a = sn.forward(&net, &x, BnMode::Eval).unwrap();
        let sub = sn.extract(&net).unwrap();
        let b = sub.predict(&x).unwrap();
        assert_eq!(a.size(), vec![3, 5]);
        let diff = (&a - &b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "genotype {g}: max difference {diff}");
        // The extracted network holds exactly the subnet's parameters (BN buffers aside).
        assert_eq!(sub.num_parameters() as u64, net.params(), "genotype {g}");
    }
    // The small preset too, with its resize from 28 to 20 pixels.
    let mnist = MbConvSpace::ofa_mnist();
    let sn = supernet(mnist.clone(), 2);
    let x = Tensor::randn([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    for g in [mnist.smallest(), mnist.largest()] {
        let net = mnist.decode(&g).unwrap();
        let a = sn.forward(&net, &x, BnMode::Eval).unwrap();
        let b = sn.extract(&net).unwrap().predict(&x).unwrap();
        assert!(a.allclose(&b, 1e-5, 1e-5, false), "genotype {g}");
    }
}

#[test]
fn deployed_subnets_compute_the_extracted_logits() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let sn = supernet(space.clone(), 4);
    // Batch norms far from identity, so that folding them is exercised.
    tch::manual_seed(4);
    randomise(sn.var_store(), |name| name.contains(".bn."));
    let mut rng = seeded_rng(5);
    let mut genotypes = vec![space.smallest(), space.largest()];
    genotypes.extend((0..6).map(|_| space.sample(&mut rng)));
    let x = Tensor::randn([3, 1, 16, 16], (Kind::Float, Device::Cpu));
    for g in &genotypes {
        let sub = sn.extract(&space.decode(g).unwrap()).unwrap();
        let a = sub.predict(&x).unwrap();
        assert!(
            a.abs().max().double_value(&[]) > 1e-2,
            "genotype {g}: trivial logits"
        );
        let b = sub.deployed().unwrap().predict(&x).unwrap();
        let diff = (&a - &b).abs().max().double_value(&[]);
        let scale = 1.0 + a.abs().max().double_value(&[]);
        assert!(diff < 1e-4 * scale, "genotype {g}: max difference {diff}");
    }
    // A wrong channel count is refused, as by the extracted subnet.
    let sub = sn
        .extract(&space.decode(&space.smallest()).unwrap())
        .unwrap();
    let wrong = Tensor::zeros([1, 2, 16, 16], (Kind::Float, Device::Cpu));
    assert!(sub.deployed().unwrap().predict(&wrong).is_err());
}

/// Checks that `after` equals `before` outside the box `dims[i] < lens[i]`, and differs inside.
fn check_box(name: &str, before: &Tensor, after: &Tensor, lens: &[i64]) {
    let mut inside = Tensor::zeros_like(before);
    let mut view = inside.shallow_clone();
    for (d, &l) in lens.iter().enumerate() {
        view = view.narrow(d as i64, 0, l);
    }
    let _ = view.fill_(1.0);
    let changed = after.ne_tensor(before).to_kind(Kind::Float);
    let outside = (&changed * (inside.ones_like() - &inside))
        .sum(Kind::Float)
        .double_value(&[]);
    assert_eq!(
        outside, 0.0,
        "`{name}` changed outside the active slice {lens:?}"
    );
    let within = (&changed * &inside).sum(Kind::Float).double_value(&[]);
    assert!(
        within > 0.0,
        "`{name}` did not change inside the active slice {lens:?}"
    );
    inside = inside.zero_();
    let _ = inside;
}

#[test]
fn a_training_step_on_one_subnet_changes_only_the_weights_it_uses() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let mut sn = supernet(space.clone(), 4);
    let params = TrainParams {
        schedule: Schedule::all_elastic(1),
        batch_size: 4,
        weight_decay: 1e-3,
        distill_weight: 0.0,
        progress: false,
        ..TrainParams::default()
    };
    let batch = Batch {
        images: Tensor::randn([4, 1, 16, 16], (Kind::Float, Device::Cpu)),
        labels: Tensor::from_slice(&[0i64, 1, 2, 3]),
    };
    let largest = space.decode(&space.largest()).unwrap();
    // Smallest widths, depth 1 / 1, kernel 3 (through the 7to5 and 5to3 transforms),
    // expand 2, resolution 12.
    let g = space.smallest();
    let net = space.decode(&g).unwrap();
    let norm = Normalization {
        mean: vec![0.0],
        std: vec![1.0],
    };
    let config = params.check().unwrap();
    let mut trainer = Trainer::new(&mut sn, config, norm);
    // A first step on the largest subnet fills every momentum buffer ...
    trainer.train_step(&batch, &[largest], 0.1).unwrap();
    let before = snapshot(trainer.supernet());
    // ... and a step on the smallest must still leave unused weights alone.
    trainer
        .train_step(&batch, std::slice::from_ref(&net), 0.1)
        .unwrap();
    let after = snapshot(trainer.supernet());

    let l = |name: &str| net.layers.iter().find(|l| l.name == name).unwrap().clone();
    let b0 = l("s1.block0");
    let (cin, mid, cout) = (
        b0.input.channels as i64,
        b0.mid_channels as i64,
        b0.out_channels as i64,
    );
    let mut boxes: Vec<(&str, Vec<i64>)> = vec![
        ("first_conv.conv.weight", vec![4, 1, 3, 3]),
        ("first_conv.bn.running_mean", vec![4]),
        ("first_conv.bn.weight", vec![4]),
        ("s1.block0.expand.conv.weight", vec![mid, cin, 1, 1]),
        ("s1.block0.expand.bn.running_var", vec![mid]),
        ("s1.block0.project.conv.weight", vec![cout, mid, 1, 1]),
        (
            "s1.block0.se.reduce.weight",
            vec![b0.se_channels.unwrap() as i64, mid, 1, 1],
        ),
        ("s1.block0.dw.conv.7to5_matrix", vec![25, 25]),
        ("s1.block0.dw.conv.5to3_matrix", vec![9, 9]),
        ("classifier.weight", vec![5, 16]),
        ("feature_mix.conv.weight", vec![16, 16, 1, 1]),
    ];
    let dw = "s1.block0.dw.conv.weight";
    boxes.push((dw, vec![mid, 1, 7, 7]));
    for (name, lens) in &boxes {
        check_box(name, &before[*name], &after[*name], lens);
    }
    // Kernel 3 comes from the 5x5 centre of the 7x7 kernel: the outer ring never moves.
    let ring_before = before[dw].narrow(2, 0, 1);
    assert!(ring_before.equal(&after[dw].narrow(2, 0, 1)));
    assert!(before[dw].narrow(3, 6, 1).equal(&after[dw].narrow(3, 6, 1)));
    // Blocks beyond the chosen depth are untouched, parameters and statistics alike.
    for (name, t) in &before {
        if ["s1.block1", "s1.block2", "s2.block1", "s2.block2"]
            .iter()
            .any(|b| name.starts_with(b))
        {
            assert!(
                t.equal(&after[name]),
                "`{name}` belongs to a skipped block but changed"
            );
        }
    }
}

#[test]
fn bn_recalibration_and_per_subnet_store() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let sn = supernet(space.clone(), 5);
    let (ga, gb) = (space.largest(), space.smallest());
    let (na, nb) = (space.decode(&ga).unwrap(), space.decode(&gb).unwrap());
    let mk = |seed: i64| {
        tch::manual_seed(seed);
        Batch {
            images: Tensor::randn([8, 1, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 + 1.0,
            labels: Tensor::zeros([8], (Kind::Int64, Device::Cpu)),
        }
    };
    let x = mk(10).images;
    let batch_stats = || tch::no_grad(|| sn.forward(&na, &x, BnMode::Calibrate(0.0)).unwrap());
    let stale = tch::no_grad(|| sn.forward(&na, &x, BnMode::Eval).unwrap());
    assert!(!stale.allclose(&batch_stats(), 1e-1, 1e-1, false));
    // Recalibrating on one batch makes eval-mode outputs equal batch-statistics ones (up to
    // the unbiased running variance).
    let used = sn.recalibrate_bn(&na, vec![mk(10)]).unwrap();
    assert_eq!(used, 1);
    let eval = tch::no_grad(|| sn.forward(&na, &x, BnMode::Eval).unwrap());
    let gap = |a: &Tensor| (a - batch_stats()).abs().max().double_value(&[]);
    assert!(
        gap(&eval) < 0.1 * gap(&stale),
        "recalibrated gap {} vs stale gap {}",
        gap(&eval),
        gap(&stale)
    );
    // Two batches: the statistics are the average of both batches' statistics.
    sn.recalibrate_bn(&na, vec![mk(10), mk(11)]).unwrap();
    let two = sn.bn_stats(&na).unwrap();
    sn.recalibrate_bn(&na, vec![mk(11)]).unwrap();
    let only11 = sn.bn_stats(&na).unwrap();
    sn.recalibrate_bn(&na, vec![mk(10)]).unwrap();
    let only10 = sn.bn_stats(&na).unwrap();
    // The first BN sees the same input in every case, so its mean is exactly the average.
    let avg = (&only10.entries[0].1 + &only11.entries[0].1) / 2.0;
    assert!(two.entries[0].1.allclose(&avg, 1e-5, 1e-5, false));

    // Store A's statistics, disturb them by calibrating B, switch back without recalibrating.
    let mut store = BnStore::new();
    store.capture(&sn, &ga).unwrap();
    let reference = tch::no_grad(|| sn.forward(&na, &x, BnMode::Eval).unwrap());
    sn.recalibrate_bn(&nb, vec![mk(12)]).unwrap();
    let disturbed = tch::no_grad(|| sn.forward(&na, &x, BnMode::Eval).unwrap());
    assert!(!disturbed.allclose(&reference, 1e-4, 1e-4, false));
    assert!(store.activate(&sn, &ga).unwrap());
    let switched = tch::no_grad(|| sn.forward(&na, &x, BnMode::Eval).unwrap());
    assert!(switched.allclose(&reference, 1e-6, 1e-6, false));
    assert!(!store.activate(&sn, &gb).unwrap());

    // The store survives a file round trip.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    store.save(&path).unwrap();
    sn.recalibrate_bn(&nb, vec![mk(13)]).unwrap();
    let loaded = BnStore::load(&path, &sn).unwrap();
    assert_eq!(loaded.len(), 1);
    loaded.activate(&sn, &ga).unwrap();
    let again = tch::no_grad(|| sn.forward(&na, &x, BnMode::Eval).unwrap());
    assert!(again.allclose(&reference, 1e-6, 1e-6, false));
}

fn train_params(epochs: usize) -> TrainParams {
    TrainParams {
        schedule: Schedule::progressive_shrinking(1, 1, 0, epochs.saturating_sub(2)),
        batch_size: 8,
        lr: 0.05,
        random_subnets: 1,
        augmentation: Augmentation {
            pad: 1,
            horizontal_flip: true,
        },
        seed: 9,
        progress: false,
        ..TrainParams::default()
    }
}

#[test]
fn checkpoints_resume_exactly() {
    let _turn = libtorch_turn();
    // One libtorch thread keeps every CPU reduction in a fixed order.
    tch::set_num_threads(1);
    let space = tiny_space();
    let data = tiny_dataset(16, 1);
    let norm = data.channel_stats();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt.safetensors");

    let mut straight = supernet(space.clone(), 6);
    {
        let mut t = Trainer::new(
            &mut straight,
            train_params(3).check().unwrap(),
            norm.clone(),
        );
        while !t.finished() {
            t.train_epoch(&data).unwrap();
        }
        assert_eq!(t.step(), 6);
    }

    let mut again = supernet(space.clone(), 6);
    {
        let mut t = Trainer::new(&mut again, train_params(3).check().unwrap(), norm.clone());
        while !t.finished() {
            t.train_epoch(&data).unwrap();
        }
    }
    let (s1, s2) = (snapshot(&straight), snapshot(&again));
    for (name, v) in &s1 {
        let diff = (v - &s2[name]).abs().max().double_value(&[]);
        assert!(
            diff <= 1e-6,
            "`{name}` differs between two identical runs by {diff}"
        );
    }
    let mut first = supernet(space.clone(), 6);
    {
        let mut t = Trainer::new(&mut first, train_params(3).check().unwrap(), norm.clone());
        t.train_epoch(&data).unwrap();
        t.train_epoch(&data).unwrap();
        t.save_checkpoint(&ckpt).unwrap();
    }
    let first_state = snapshot(&first);
    {
        let mut probe = supernet(space.clone(), 78);
        let mut t = Trainer::new(&mut probe, train_params(3).check().unwrap(), norm.clone());
        t.resume(&ckpt).unwrap();
        let loaded = snapshot(t.supernet());
        for (name, v) in &first_state {
            assert!(v.equal(&loaded[name]), "`{name}` not restored exactly");
        }
    }
    // A supernet with other initial weights resumes from the checkpoint.
    let mut resumed = supernet(space.clone(), 77);
    {
        let mut t = Trainer::new(&mut resumed, train_params(3).check().unwrap(), norm.clone());
        t.resume(&ckpt).unwrap();
        assert_eq!((t.epoch(), t.step()), (2, 4));
        while !t.finished() {
            t.train_epoch(&data).unwrap();
        }
    }
    let (a, b) = (snapshot(&straight), snapshot(&resumed));
    for (name, t) in &a {
        let diff = (t - &b[name]).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "`{name}` differs after resume by {diff}");
    }
    // A checkpoint of another space is refused with the field named.
    let mut other = supernet(MbConvSpace::ofa_mnist(), 0);
    let mut t = Trainer::new(&mut other, train_params(3).check().unwrap(), norm);
    match t.resume(&ckpt) {
        Err(dynas_supernet::SupernetError::Checkpoint { field, .. }) => assert_eq!(field, "space"),
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}

#[test]
fn training_reduces_the_loss_and_the_oracle_exports_samples() {
    let _turn = libtorch_turn();
    let space = tiny_space();
    let data = tiny_dataset(40, 2);
    let norm = data.channel_stats();
    let mut sn = supernet(space.clone(), 7);
    let params = TrainParams {
        schedule: Schedule::all_elastic(4),
        lr: 0.05,
        ..train_params(4)
    };
    let (first, last) = {
        let mut t = Trainer::new(&mut sn, params.check().unwrap(), norm.clone());
        let first = t.train_epoch(&data).unwrap();
        let mut last = first.clone();
        while !t.finished() {
            last = t.train_epoch(&data).unwrap();
        }
        (first, last)
    };
    assert!(
        last.loss_largest < first.loss_largest,
        "{first:?} -> {last:?}"
    );

    let est = AccuracyEstimator::new(&sn, &data, &data, norm, 2, 8).unwrap();
    let mut rng = seeded_rng(0);
    let samples: Vec<AccuracySample> = (0..2)
        .map(|_| est.sample(&space.sample(&mut rng)).unwrap())
        .collect();
    for s in &samples {
        assert!((0.0..=1.0).contains(&s.accuracy));
        assert!(s.macs > 0 && s.params > 0);
    }
    let dir = tempfile::tempdir().unwrap();
    write_samples_json(dir.path().join("s.json"), &samples).unwrap();
    let back: Vec<AccuracySample> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(back, samples);
    write_samples_csv(dir.path().join("s.csv"), &samples).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with(&samples[0].genotype)
    );
    assert!(
        AccuracyEstimator::new(
            &sn,
            &data,
            &data,
            Normalization {
                mean: vec![0.0],
                std: vec![1.0]
            },
            0,
            8
        )
        .is_err()
    );
}

#[test]
fn sampler_follows_the_progressive_shrinking_phases() {
    let space = tiny_space();
    let sampler = SubnetSampler::new(&space);
    let dims = space.dimensions();
    let schedule = Schedule::progressive_shrinking(1, 1, 1, 1);
    assert_eq!(schedule.epochs(), 4);
    let kernel_phase = &schedule.phase(1).elastic;
    let g = sampler.smallest(kernel_phase);
    for ((d, role), &v) in dims.iter().zip(space.gene_roles()).zip(g.genes()) {
        let kind = ElasticDim::of(role);
        let expect = if kernel_phase.contains(&kind) {
            0
        } else {
            d.len() - 1
        };
        assert_eq!(v, expect, "dimension {}", d.name());
    }
    let mut rng = seeded_rng(1);
    for _ in 0..20 {
        let g = sampler.sample(&schedule.phase(0).elastic, &mut rng);
        let sub = space.subnet(&g).unwrap();
        assert!(sub.stages.iter().all(|s| s.depth == 3));
        assert!(
            sub.stages
                .iter()
                .flat_map(|s| &s.blocks)
                .all(|b| b.kernel == 7)
        );
    }
    assert_eq!(sampler.largest(), space.largest());
    assert_eq!(
        sampler.smallest(&schedule.phase(3).elastic),
        space.smallest()
    );
    let _ = Genotype::new(vec![]);
    approx::assert_relative_eq!(cosine_lr(0.1, 0, 0, 100), 0.1);
    approx::assert_relative_eq!(cosine_lr(0.1, 50, 0, 100), 0.05, epsilon = 1e-12);
    approx::assert_relative_eq!(cosine_lr(0.1, 0, 10, 100), 0.01);
    assert!(
        TrainParams {
            lr: -1.0,
            ..TrainParams::default()
        }
        .check()
        .is_err()
    );
    assert!(
        TrainParams {
            momentum: 1.0,
            ..TrainParams::default()
        }
        .check()
        .is_err()
    );
    assert!(SupernetConfig::new(true, 0.0, 1e-5).is_err());
}

#[test]
fn an_extracted_subnet_is_an_early_exit_backbone() {
    let _turn = libtorch_turn();
    use dynas_exits::{
        Backbone, DynamicNet, ExitHead, ExitHeads, ExitPolicy, ExitRule, HeadTraining,
    };
    let space = tiny_space();
    let sn = supernet(space.clone(), 4);
    let mut rng = seeded_rng(5);
    let x = Tensor::randn([6, 1, 16, 16], (Kind::Float, Device::Cpu));
    for g in [space.smallest(), space.largest(), space.sample(&mut rng)] {
        let sub = sn.extract(&space.decode(&g).unwrap()).unwrap();
        // Blocks then classifier compute exactly what the whole subnet computes.
        let n = sub.num_blocks();
        assert!(
            n >= 3 && n < sub.network().layers.len(),
            "genotype {g}: {n} blocks"
        );
        let mut h = x.shallow_clone();
        for b in 0..n {
            h = sub.forward_block(b, &h).unwrap();
            assert_eq!(h.size()[1], sub.block_channels(b), "genotype {g} block {b}");
        }
        let logits = sub.classify(&h).unwrap();
        let whole = sub.predict(&x).unwrap();
        assert!(logits.allclose(&whole, 1e-6, 1e-6, false), "genotype {g}");
        assert!(sub.forward_block(n, &h).is_err());
        assert!(
            sub.forward_block(
                0,
                &Tensor::zeros([2, 3, 16, 16], (Kind::Float, Device::Cpu))
            )
            .is_err()
        );
    }

    // Heads train on the subnet; a policy that never exits reproduces the full predictions.
    let sub = sn
        .extract(&space.decode(&space.largest()).unwrap())
        .unwrap();
    let data = tiny_dataset(64, 6);
    let batch = data.batch(
        &(0..64).collect::<Vec<_>>(),
        &data.channel_stats(),
        &Augmentation::NONE,
        &mut seeded_rng(0),
        Device::Cpu,
    );
    let spec = ExitHead::new(8, Activation::Relu, 5).unwrap();
    let mut heads = ExitHeads::new(&sub, vec![1, 3], spec, Device::Cpu).unwrap();
    let cfg = HeadTraining::new(2, 16, 1e-2, 2.0, 0.5, 1).unwrap();
    let report = heads
        .train(&sub, &batch.images, &batch.labels, &cfg)
        .unwrap();
    assert_eq!(report.epoch_losses.len(), 2);
    assert!(report.epoch_losses.iter().all(|l| l.is_finite()));
    let never =
        ExitPolicy::new(ExitRule::MaxSoftmax(vec![f64::INFINITY, f64::INFINITY]), 2).unwrap();
    let out = DynamicNet::new(&sub, &heads, never)
        .unwrap()
        .infer(&batch.images)
        .unwrap();
    let full = Vec::<i64>::try_from(sub.predict(&batch.images).unwrap().argmax(-1, false)).unwrap();
    assert_eq!(out.predictions, full);
    assert!(out.exits.iter().all(|&e| e == 2));
}
