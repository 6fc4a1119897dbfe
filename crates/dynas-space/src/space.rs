//! The [`SearchSpace`] trait, its dimensions, and the generic genetic operators.

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SpaceError};
use crate::genotype::Genotype;
use crate::network::Network;

/// One named dimension of a space and the labels of its choices, in index order.
///
/// Spaces order choices from cheapest to most expensive where that is meaningful, so that
/// index 0 everywhere is the smallest network and the last index the largest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    name: String,
    labels: Vec<String>,
}

impl Dimension {
    /// A dimension with the given choice labels; it needs at least one choice and unique labels.
    pub fn new(name: impl Into<String>, labels: Vec<String>) -> Result<Self> {
        let name = name.into();
        if labels.is_empty() {
            return Err(SpaceError::InvalidSpace(format!(
                "dimension `{name}` has no choices"
            )));
        }
        for (i, label) in labels.iter().enumerate() {
            if labels[..i].contains(label) {
                return Err(SpaceError::InvalidSpace(format!(
                    "dimension `{name}` has the choice `{label}` twice"
                )));
            }
        }
        Ok(Self { name, labels })
    }

    /// A dimension whose labels are the `Display` forms of `values`.
    pub fn from_values<T: std::fmt::Display>(
        name: impl Into<String>,
        values: &[T],
    ) -> Result<Self> {
        Self::new(name, values.iter().map(ToString::to_string).collect())
    }

    /// The dimension's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels of its choices, in index order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Number of choices.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Always false: a dimension has at least one choice.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Index of the choice with this label.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }
}

/// A discrete architecture search space.
///
/// Implementors give the dimensions and how a genotype decodes into a [`Network`]; sampling,
/// validation, naming, cardinality and enumeration come for free. The trait is object safe.
pub trait SearchSpace: Send + Sync {
    /// Short name of the space, used in errors and files.
    fn name(&self) -> &str;

    /// The dimensions, one per gene.
    fn dimensions(&self) -> &[Dimension];

    /// Decodes a genotype into the network it describes (validating it first).
    fn decode(&self, genotype: &Genotype) -> Result<Network>;

    /// Checks length and index ranges.
    fn validate(&self, genotype: &Genotype) -> Result<()> {
        let dims = self.dimensions();
        if genotype.len() != dims.len() {
            return Err(SpaceError::WrongLength {
                space: self.name().to_string(),
                expected: dims.len(),
                got: genotype.len(),
            });
        }
        for (dim, &index) in dims.iter().zip(genotype.genes()) {
            if index >= dim.len() {
                return Err(SpaceError::IndexOutOfRange {
                    dimension: dim.name().to_string(),
                    index,
                    choices: dim.len(),
                });
            }
        }
        Ok(())
    }

    /// Number of genotypes (saturating at `u128::MAX`).
    fn cardinality(&self) -> u128 {
        self.dimensions()
            .iter()
            .fold(1u128, |acc, d| acc.saturating_mul(d.len() as u128))
    }

    /// A genotype drawn uniformly at random.
    fn sample(&self, rng: &mut dyn RngCore) -> Genotype {
        Genotype::new(
            self.dimensions()
                .iter()
                .map(|d| rng.random_range(0..d.len()))
                .collect(),
        )
    }

    /// The genotype with the first choice everywhere (the smallest network in ordered spaces).
    fn smallest(&self) -> Genotype {
        Genotype::new(vec![0; self.dimensions().len()])
    }

    /// The genotype with the last choice everywhere (the largest network in ordered spaces).
    fn largest(&self) -> Genotype {
        Genotype::new(self.dimensions().iter().map(|d| d.len() - 1).collect())
    }

    /// Human-readable form: `name=label` pairs separated by spaces.
    fn describe(&self, genotype: &Genotype) -> Result<String> {
        self.validate(genotype)?;
        Ok(self
            .dimensions()
            .iter()
            .zip(genotype.genes())
            .map(|(d, &i)| format!("{}={}", d.name(), d.labels()[i]))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Parses the form written by [`SearchSpace::describe`]; every dimension must be named once.
    fn parse_described(&self, text: &str) -> Result<Genotype> {
        let dims = self.dimensions();
        let mut genes: Vec<Option<usize>> = vec![None; dims.len()];
        for pair in text.split_whitespace() {
            let (name, label) = pair.split_once('=').ok_or_else(|| SpaceError::Parse {
                input: pair.to_string(),
                reason: "expected `name=label`".to_string(),
            })?;
            let position = dims.iter().position(|d| d.name() == name).ok_or_else(|| {
                SpaceError::UnknownName {
                    space: self.name().to_string(),
                    name: name.to_string(),
                }
            })?;
            let index = dims[position]
                .index_of(label)
                .ok_or_else(|| SpaceError::UnknownName {
                    space: self.name().to_string(),
                    name: format!("{name}={label}"),
                })?;
            if genes[position].replace(index).is_some() {
                return Err(SpaceError::Parse {
                    input: text.to_string(),
                    reason: format!("dimension `{name}` is given twice"),
                });
            }
        }
        genes
            .into_iter()
            .zip(dims)
            .map(|(g, d)| {
                g.ok_or_else(|| SpaceError::Parse {
                    input: text.to_string(),
                    reason: format!("dimension `{}` is missing", d.name()),
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Genotype::new)
    }

    /// Every genotype in lexicographic order, if there are at most `limit` of them.
    fn enumerate(&self, limit: u128) -> Result<GenotypeIter> {
        let cardinality = self.cardinality();
        if cardinality > limit {
            return Err(SpaceError::TooLargeToEnumerate {
                space: self.name().to_string(),
                cardinality,
                limit,
            });
        }
        Ok(GenotypeIter::new(
            self.dimensions().iter().map(Dimension::len).collect(),
        ))
    }
}

/// Iterator over every genotype of a space, last gene fastest.
#[derive(Clone, Debug)]
pub struct GenotypeIter {
    radices: Vec<usize>,
    next: Option<Vec<usize>>,
}

impl GenotypeIter {
    /// Enumerates all index vectors with `radices[i]` choices at position `i`.
    pub fn new(radices: Vec<usize>) -> Self {
        let next = if radices.contains(&0) {
            None
        } else {
            Some(vec![0; radices.len()])
        };
        Self { radices, next }
    }
}

impl Iterator for GenotypeIter {
    type Item = Genotype;

    fn next(&mut self) -> Option<Genotype> {
        let current = self.next.take()?;
        let mut following = current.clone();
        let mut position = following.len();
        loop {
            if position == 0 {
                break;
            }
            position -= 1;
            following[position] += 1;
            if following[position] < self.radices[position] {
                self.next = Some(following);
                break;
            }
            following[position] = 0;
        }
        Some(Genotype::new(current))
    }
}

/// How a mutated gene takes its new value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MutationKind {
    /// Draw any value, possibly the same one (once-for-all).
    Resample,
    /// Draw a value different from the current one (AttentiveNAS); single-choice genes stay.
    ChangeValue,
}

/// Per-gene mutation with a validated probability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    kind: MutationKind,
    probability: f64,
}

impl Mutation {
    /// A mutation touching each gene with `probability` (in `[0, 1]`).
    pub fn new(kind: MutationKind, probability: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(SpaceError::InvalidParameter {
                name: "mutation probability",
                reason: format!("{probability} is not in [0, 1]"),
            });
        }
        Ok(Self { kind, probability })
    }

    /// The kind of mutation.
    pub fn kind(&self) -> MutationKind {
        self.kind
    }

    /// The per-gene probability.
    pub fn probability(&self) -> f64 {
        self.probability
    }

    /// A mutated copy of `parent`, which must be valid for `space`.
    pub fn apply(
        &self,
        space: &dyn SearchSpace,
        parent: &Genotype,
        rng: &mut dyn RngCore,
    ) -> Genotype {
        let mut child = parent.clone();
        for (gene, dim) in child.genes_mut().iter_mut().zip(space.dimensions()) {
            if !rng.random_bool(self.probability) {
                continue;
            }
            *gene = match self.kind {
                MutationKind::Resample => rng.random_range(0..dim.len()),
                MutationKind::ChangeValue if dim.len() > 1 => {
                    // Draw from the other len-1 values without rejection.
                    let draw = rng.random_range(0..dim.len() - 1);
                    if draw >= *gene { draw + 1 } else { draw }
                }
                MutationKind::ChangeValue => *gene,
            };
        }
        child
    }
}

/// Recombination of two parents of equal length.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Crossover {
    /// Each gene swapped between the children with the given probability.
    Uniform {
        /// Probability of swapping a gene.
        swap_probability: f64,
    },
    /// Cut both parents at `points` distinct positions and alternate the segments.
    KPoint {
        /// Number of cut points.
        points: usize,
    },
}

impl Crossover {
    /// Uniform crossover with a validated swap probability.
    pub fn uniform(swap_probability: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&swap_probability) {
            return Err(SpaceError::InvalidParameter {
                name: "swap probability",
                reason: format!("{swap_probability} is not in [0, 1]"),
            });
        }
        Ok(Self::Uniform { swap_probability })
    }

    /// k-point crossover; `points` must be at least 1.
    pub fn k_point(points: usize) -> Result<Self> {
        if points == 0 {
            return Err(SpaceError::InvalidParameter {
                name: "crossover points",
                reason: "must be at least 1".to_string(),
            });
        }
        Ok(Self::KPoint { points })
    }

    /// Two children of `a` and `b`; errors if their lengths differ.
    pub fn apply(
        &self,
        a: &Genotype,
        b: &Genotype,
        rng: &mut dyn RngCore,
    ) -> Result<(Genotype, Genotype)> {
        if a.len() != b.len() {
            return Err(SpaceError::WrongLength {
                space: "crossover".to_string(),
                expected: a.len(),
                got: b.len(),
            });
        }
        let mut left = a.clone();
        let mut right = b.clone();
        let n = a.len();
        match *self {
            Self::Uniform { swap_probability } => {
                for i in 0..n {
                    if rng.random_bool(swap_probability) {
                        std::mem::swap(&mut left.genes_mut()[i], &mut right.genes_mut()[i]);
                    }
                }
            }
            Self::KPoint { points } => {
                if n >= 2 {
                    // Cuts lie strictly inside (1..n); at most n-1 distinct ones exist.
                    let k = points.min(n - 1);
                    let mut cuts = rand::seq::index::sample(rng, n - 1, k).into_vec();
                    cuts.iter_mut().for_each(|c| *c += 1);
                    cuts.sort_unstable();
                    let mut swapping = false;
                    let mut cut_iter = cuts.into_iter().peekable();
                    for i in 0..n {
                        while cut_iter.peek() == Some(&i) {
                            swapping = !swapping;
                            cut_iter.next();
                        }
                        if swapping {
                            std::mem::swap(&mut left.genes_mut()[i], &mut right.genes_mut()[i]);
                        }
                    }
                }
            }
        }
        Ok((left, right))
    }
}
