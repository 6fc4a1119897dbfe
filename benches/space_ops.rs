//! Genotype operations of `dynas-space`: the inner loop of an evolutionary search.
//!
//! Run: `cargo bench -p dynas-space --bench space_ops`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dynas_space::{
    FbNetSpace, MbConvSpace, Mutation, MutationKind, Nb201Space, SearchSpace, seeded_rng,
};

fn attentive_nas(c: &mut Criterion) {
    let space = MbConvSpace::attentive_nas();
    let mutation = Mutation::new(MutationKind::ChangeValue, 0.1).expect("valid probability");
    let mut rng = seeded_rng(42);
    c.bench_function("attentive_nas/sample+mutate+decode+macs", |b| {
        b.iter(|| {
            let parent = space.sample(&mut rng);
            let child = mutation.apply(&space, &parent, &mut rng);
            let network = space.decode(&child).expect("valid child");
            black_box(network.macs())
        })
    });
    let genotype = space.sample(&mut rng);
    c.bench_function("attentive_nas/decode+macs", |b| {
        b.iter(|| {
            black_box(
                space
                    .decode(black_box(&genotype))
                    .expect("valid genotype")
                    .macs(),
            )
        })
    });
    c.bench_function("attentive_nas/subnet", |b| {
        b.iter(|| black_box(space.subnet(black_box(&genotype)).expect("valid genotype")))
    });
}

fn other_spaces(c: &mut Criterion) {
    let mut rng = seeded_rng(7);
    let nb201 = Nb201Space::new();
    c.bench_function("nb201/sample+decode+macs", |b| {
        b.iter(|| {
            let genotype = nb201.sample(&mut rng);
            black_box(nb201.decode(&genotype).expect("valid").macs())
        })
    });
    let fbnet = FbNetSpace::cifar100();
    c.bench_function("fbnet_cifar100/sample+decode+macs", |b| {
        b.iter(|| {
            let genotype = fbnet.sample(&mut rng);
            black_box(fbnet.decode(&genotype).expect("valid").macs())
        })
    });
}

criterion_group!(benches, attentive_nas, other_spaces);
criterion_main!(benches);
