//! Property tests over every preset space: textual forms round-trip, structured subnets
//! round-trip, and sampling, both mutations and both crossovers stay inside the space.

use std::collections::HashSet;

use dynas_space::{
    Crossover, FbNetSpace, Genotype, MbConvSpace, Mutation, MutationKind, Nb201Space, SearchSpace,
    seeded_rng,
};
use proptest::prelude::*;

fn presets() -> Vec<Box<dyn SearchSpace>> {
    vec![
        Box::new(MbConvSpace::attentive_nas()),
        Box::new(MbConvSpace::ofa_mobilenet_v3()),
        Box::new(MbConvSpace::ofa_mnist()),
        Box::new(Nb201Space::new()),
        Box::new(FbNetSpace::cifar100()),
        Box::new(FbNetSpace::imagenet()),
    ]
}

fn mbconv_presets() -> Vec<MbConvSpace> {
    vec![
        MbConvSpace::attentive_nas(),
        MbConvSpace::ofa_mobilenet_v3(),
        MbConvSpace::ofa_mnist(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn textual_forms_round_trip(seed in any::<u64>()) {
        let mut rng = seeded_rng(seed);
        for space in presets() {
            let genotype = space.sample(&mut rng);
            prop_assert!(space.validate(&genotype).is_ok());
            let compact: Genotype = genotype.to_string().parse().expect("compact form parses");
            prop_assert_eq!(&compact, &genotype);
            let described = space.describe(&genotype).expect("valid genotype");
            prop_assert_eq!(space.parse_described(&described).expect("parses"), genotype.clone());
            let json = serde_json::to_string(&genotype).expect("serialises");
            prop_assert_eq!(serde_json::from_str::<Genotype>(&json).expect("deserialises"), genotype.clone());
            let network = space.decode(&genotype).expect("decodes");
            prop_assert!(network.macs() > 0);
        }
    }

    #[test]
    fn nb201_and_fbnet_identifiers_round_trip(seed in any::<u64>()) {
        let mut rng = seeded_rng(seed);
        let nb201 = Nb201Space::new();
        let genotype = nb201.sample(&mut rng);
        let arch = nb201.arch_str(&genotype).expect("valid");
        prop_assert_eq!(nb201.parse_arch_str(&arch).expect("parses"), genotype.clone());
        prop_assert_eq!(nb201.decode(&genotype).expect("decodes").arch_id, Some(arch));
        let fbnet = FbNetSpace::cifar100();
        let genotype = fbnet.sample(&mut rng);
        let ops = fbnet.ops_string(&genotype).expect("valid");
        prop_assert_eq!(fbnet.parse_ops(&ops).expect("parses"), genotype);
    }

    #[test]
    fn subnets_and_genotypes_round_trip(seed in any::<u64>()) {
        let mut rng = seeded_rng(seed);
        for space in mbconv_presets() {
            let genotype = space.sample(&mut rng);
            let subnet = space.subnet(&genotype).expect("decodes");
            let canonical = space.genotype(&subnet).expect("encodes");
            prop_assert_eq!(&space.subnet(&canonical).expect("decodes"), &subnet);
            prop_assert_eq!(space.decode(&canonical).expect("decodes"), space.network(&subnet));
            let smallest = space.decode(&space.smallest()).expect("decodes").macs();
            let largest = space.decode(&space.largest()).expect("decodes").macs();
            let macs = space.network(&subnet).macs();
            prop_assert!(smallest <= macs && macs <= largest);
        }
    }

    #[test]
    fn genetic_operators_stay_valid(
        seed in any::<u64>(),
        probability in 0.0f64..=1.0,
        points in 1usize..6,
    ) {
        let mut rng = seeded_rng(seed);
        let mutations = [
            Mutation::new(MutationKind::Resample, probability).expect("valid"),
            Mutation::new(MutationKind::ChangeValue, probability).expect("valid"),
        ];
        let crossovers = [
            Crossover::uniform(probability).expect("valid"),
            Crossover::k_point(points).expect("valid"),
        ];
        for space in presets() {
            let a = space.sample(&mut rng);
            let b = space.sample(&mut rng);
            for mutation in &mutations {
                let child = mutation.apply(space.as_ref(), &a, &mut rng);
                prop_assert!(space.validate(&child).is_ok());
                prop_assert!(space.decode(&child).is_ok());
            }
            // Change-value mutation at probability 1 changes every gene with >1 choice.
            let changed = mutations[1].apply(space.as_ref(), &a, &mut rng);
            if probability == 1.0 {
                for ((x, y), dim) in a.genes().iter().zip(changed.genes()).zip(space.dimensions()) {
                    prop_assert!(dim.len() == 1 || x != y);
                }
            }
            for crossover in &crossovers {
                let (left, right) = crossover.apply(&a, &b, &mut rng).expect("same length");
                prop_assert!(space.validate(&left).is_ok());
                prop_assert!(space.validate(&right).is_ok());
                // Genes are only exchanged, never invented.
                for i in 0..a.len() {
                    let pair = [left.genes()[i], right.genes()[i]];
                    prop_assert!(pair == [a.genes()[i], b.genes()[i]] || pair == [b.genes()[i], a.genes()[i]]);
                }
            }
        }
    }
}

#[test]
fn nb201_enumerates_all_15625_distinct_cells() {
    let space = Nb201Space::new();
    assert_eq!(space.cardinality(), 15_625);
    let all: HashSet<Genotype> = space.enumerate(20_000).expect("small space").collect();
    assert_eq!(all.len(), 15_625);
    assert!(all.iter().all(|g| space.validate(g).is_ok()));
    assert!(space.enumerate(15_624).is_err());
}

#[test]
fn large_spaces_refuse_enumeration() {
    let space = MbConvSpace::attentive_nas();
    assert!(space.enumerate(1_000_000).is_err());
}
