//! Shared fixtures: the real NAS-Bench-201 table, loaded once.

#![allow(dead_code)]

use std::sync::OnceLock;

use dynas_search::{Objective, TableProblem};

/// The real NAS-Bench-201 table of the shared data.
pub const NB201: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);

/// The table with objectives (raspi4 latency min, CIFAR-100 accuracy max), loaded once.
pub fn nb201() -> &'static TableProblem {
    static TABLE: OnceLock<TableProblem> = OnceLock::new();
    TABLE.get_or_init(|| {
        TableProblem::from_csv(
            NB201,
            vec![
                Objective::minimize("raspi4_latency"),
                Objective::maximize("acc_cifar100"),
            ],
        )
        .expect("nb201_hw.csv loads")
    })
}
