//! Float helpers. [`within_tolerance`] compares accuracy figures that are ratios of counts;
//! the serde helpers keep non-finite floats (NaN objectives of infeasible rows, infinite
//! crowding distances) through JSON, which has no literal for them: they are written as the
//! strings `"NaN"`, `"inf"` and `"-inf"`. Finite values stay numbers and round-trip exactly.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Whether `loss` (e.g. points of top-1 given up, or error added) is at most `tolerance`.
/// Accuracy figures are ratios of counts: a loss of exactly the tolerance can come out a few
/// ulps above it (`89.60000000000001 - 88.6`), so differences below 1e-9 count as equal.
pub fn within_tolerance(loss: f64, tolerance: f64) -> bool {
    loss <= tolerance + 1e-9
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
}

fn to_repr(v: f64) -> Repr {
    if v.is_finite() {
        Repr::Number(v)
    } else if v.is_nan() {
        Repr::Text("NaN".into())
    } else if v > 0.0 {
        Repr::Text("inf".into())
    } else {
        Repr::Text("-inf".into())
    }
}

fn from_repr<E: de::Error>(r: Repr) -> Result<f64, E> {
    match r {
        Repr::Number(v) => Ok(v),
        Repr::Text(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(E::custom(format!("`{other}` is not a number"))),
        },
    }
}

/// One `f64`.
pub mod scalar {
    use super::*;

    /// Serialises a float, non-finite values as strings.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        to_repr(*v).serialize(s)
    }

    /// Deserialises a float written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        from_repr(Repr::deserialize(d)?)
    }
}

/// A `Vec<f64>`.
pub mod vec {
    use super::*;

    /// Serialises floats, non-finite values as strings.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for &x in v {
            seq.serialize_element(&to_repr(x))?;
        }
        seq.end()
    }

    /// Deserialises floats written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Repr>::deserialize(d)?
            .into_iter()
            .map(from_repr)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::within_tolerance;

    #[test]
    fn an_error_of_exactly_the_tolerance_is_within_it_despite_rounding() {
        // 1,664 and 1,654 of 2,000 images right: errors exactly half a point apart, though
        // 17.30000000000001 > 16.799999999999997 + 0.5 in floating point.
        let error = |right: f64| 100.0 - right / 2000.0 * 100.0;
        let (reference, candidate) = (error(1664.0), error(1654.0));
        assert!(
            candidate > reference + 0.5,
            "the rounding this test is about"
        );
        assert!(within_tolerance(candidate - reference, 0.5));
        assert!(!within_tolerance(error(1653.0) - reference, 0.5));
    }
}
