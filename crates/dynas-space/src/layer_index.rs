//! A 0-based position in a network's layer list, as a type: exits, cost paths and deployment
//! files all say "after layer i" with it, so a 1-based count cannot be passed by mistake.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The 0-based index of a layer of a decoded [`crate::Network`] (`network.layers[i]`).
///
/// A count of layers ("the first `n` layers") becomes an index only through
/// [`LayerIndex::from_count`], which names the conversion; serialised as a plain number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayerIndex(usize);

impl LayerIndex {
    /// Layer `index` (0-based).
    pub const fn new(index: usize) -> Self {
        Self(index)
    }

    /// The last layer of the first `count` layers (`count` is 1-based); `None` for 0.
    pub const fn from_count(count: usize) -> Option<Self> {
        match count.checked_sub(1) {
            Some(i) => Some(Self(i)),
            None => None,
        }
    }

    /// The 0-based index.
    pub const fn index(self) -> usize {
        self.0
    }

    /// How many layers run up to and including this one (`index + 1`).
    pub const fn count(self) -> usize {
        self.0 + 1
    }
}

impl fmt::Display for LayerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_indices_convert_explicitly() {
        assert_eq!(LayerIndex::from_count(3), Some(LayerIndex::new(2)));
        assert_eq!(LayerIndex::from_count(0), None);
        assert_eq!(LayerIndex::new(2).count(), 3);
        assert_eq!(serde_json::to_string(&LayerIndex::new(4)).unwrap(), "4");
        let back: LayerIndex = serde_json::from_str("4").unwrap();
        assert_eq!(back.index(), 4);
    }
}
