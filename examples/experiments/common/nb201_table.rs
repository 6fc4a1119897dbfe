//! The NAS-Bench-201 table arguments shared by the table examples (included with `#[path]`, as
//! each example belongs to its own crate).

/// The NAS-Bench-201 table in `crates/dynas-data/data`.
pub const NB201_CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dynas-data/data/nb201/nb201_hw.csv"
);

/// `[CSV] [SEED]`: the table and the seed of the run.
#[derive(clap::Args, Debug)]
pub struct TableAndSeed {
    /// NAS-Bench-201 table (absent or empty: `crates/dynas-data/data/nb201/nb201_hw.csv`).
    csv: Option<String>,
    /// Random seed.
    #[arg(default_value_t = 0)]
    pub seed: u64,
}

impl TableAndSeed {
    /// The table to read.
    pub fn csv(&self) -> &str {
        table_or_default(self.csv.as_deref())
    }
}

/// `csv`, or the shipped table when it is absent or empty (so `"" 1` keeps the default table).
pub fn table_or_default(csv: Option<&str>) -> &str {
    csv.filter(|s| !s.is_empty()).unwrap_or(NB201_CSV)
}
