//! Genotypes: a vector of choice indices over the named dimensions of a space.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SpaceError;

/// One point of a search space: the index of the chosen value in every dimension.
///
/// Its compact form (`Display` / `FromStr`) is the indices joined by `-`, e.g. `1-0-2-2`;
/// [`crate::SearchSpace::describe`] gives the named, human-readable form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Genotype(Vec<usize>);

impl Genotype {
    /// Wraps raw choice indices (validate them against a space with
    /// [`crate::SearchSpace::validate`]).
    pub fn new(genes: Vec<usize>) -> Self {
        Self(genes)
    }

    /// The choice indices.
    pub fn genes(&self) -> &[usize] {
        &self.0
    }

    /// Mutable access to the choice indices.
    pub fn genes_mut(&mut self) -> &mut [usize] {
        &mut self.0
    }

    /// Number of genes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the genotype has no genes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The gene at `position`, if any.
    pub fn get(&self, position: usize) -> Option<usize> {
        self.0.get(position).copied()
    }

    /// Consumes the genotype and returns its indices.
    pub fn into_genes(self) -> Vec<usize> {
        self.0
    }
}

impl From<Vec<usize>> for Genotype {
    fn from(genes: Vec<usize>) -> Self {
        Self(genes)
    }
}

impl fmt::Display for Genotype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for Genotype {
    type Err = SpaceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self(Vec::new()));
        }
        s.split('-')
            .map(|part| {
                part.trim().parse::<usize>().map_err(|e| SpaceError::Parse {
                    input: s.to_string(),
                    reason: format!("gene `{part}` is not a non-negative integer ({e})"),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_round_trips() {
        let g = Genotype::new(vec![3, 0, 12, 1]);
        assert_eq!(g.to_string(), "3-0-12-1");
        assert_eq!("3-0-12-1".parse::<Genotype>(), Ok(g));
    }

    #[test]
    fn bad_compact_form_is_a_parse_error() {
        assert!(matches!(
            "1-x-2".parse::<Genotype>(),
            Err(SpaceError::Parse { .. })
        ));
    }

    #[test]
    fn serde_is_a_plain_array() {
        let g = Genotype::new(vec![1, 2]);
        let json = serde_json::to_string(&g).expect("serialise");
        assert_eq!(json, "[1,2]");
        let back: Genotype = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, g);
    }
}
