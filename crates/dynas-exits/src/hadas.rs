//! Loader for the HADAS per-exit accuracy files (`Exit,TOP1_Acc,TOP5_Acc,Loss`, accuracies in
//! percent, one row per exit attached after a backbone layer; the last row is the exit just
//! before the final classifier).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cost::ExitPosition;
use crate::error::{ExitError, Result};
use crate::synthetic::SyntheticConfidence;
use crate::table::ExitTable;

/// One row of a HADAS exit file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HadasExitRow {
    /// Exit name (e.g. `Exit_3`).
    pub name: String,
    /// Top-1 accuracy, fraction in `[0, 1]`.
    pub top1: f64,
    /// Top-5 accuracy, fraction in `[0, 1]`.
    pub top5: f64,
    /// Mean validation cross-entropy.
    pub loss: f64,
}

/// A row as the file spells it (percentages, before validation).
#[derive(Deserialize)]
struct RawRow {
    #[serde(rename = "Exit")]
    exit: String,
    #[serde(rename = "TOP1_Acc")]
    top1: f64,
    #[serde(rename = "TOP5_Acc")]
    top5: f64,
    #[serde(rename = "Loss")]
    loss: f64,
}

impl RawRow {
    const COLUMNS: [&'static str; 4] = ["Exit", "TOP1_Acc", "TOP5_Acc", "Loss"];
}

/// An [`ExitError::Parse`] from a csv error: the line and, for a bad value, the column name.
fn csv_error(
    origin: &Path,
    e: &csv::Error,
    row: Option<(&csv::StringRecord, &csv::StringRecord)>,
) -> ExitError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match (e.kind(), row) {
        (csv::ErrorKind::Deserialize { err, .. }, Some((columns, record))) => {
            let i = err.field().unwrap_or(0) as usize;
            let field = columns.get(i).unwrap_or("row");
            let value = record.get(i).unwrap_or("");
            ExitError::parse(origin, line, field, format!("`{value}`: {}", err.kind()))
        }
        _ => ExitError::parse(origin, line, "row", e.to_string()),
    }
}

/// The per-exit accuracies of one HADAS backbone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HadasExitData {
    /// Where the data came from.
    pub path: PathBuf,
    /// Rows in exit order.
    pub rows: Vec<HadasExitRow>,
}

impl HadasExitData {
    /// Reads and validates a file; errors name the file, line and column.
    pub fn from_csv(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path).map_err(|e| ExitError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses the text of a file (`origin` names it in errors).
    pub fn parse(text: &str, origin: impl AsRef<Path>) -> Result<Self> {
        let origin = origin.as_ref();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns = reader
            .headers()
            .map_err(|e| csv_error(origin, &e, None))?
            .clone();
        if columns.is_empty() {
            return Err(ExitError::parse(origin, 1, "header", "empty file"));
        }
        if let Some((name, first, second)) = dynas_cost::table::duplicate_column(columns.iter()) {
            return Err(ExitError::parse(
                origin,
                1,
                name,
                format!("the column appears twice in the header (columns {first} and {second})"),
            ));
        }
        for name in RawRow::COLUMNS {
            if !columns.iter().any(|c| c == name) {
                return Err(ExitError::parse(
                    origin,
                    1,
                    name,
                    "column missing from the header",
                ));
            }
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(origin, &e, None))?;
            if record.iter().all(str::is_empty) {
                continue;
            }
            let line_no = record.position().map_or(0, |p| p.line() as usize);
            if record.len() != columns.len() {
                return Err(ExitError::parse(
                    origin,
                    line_no,
                    "row",
                    format!("{} fields, header has {}", record.len(), columns.len()),
                ));
            }
            let raw: RawRow = record
                .deserialize(Some(&columns))
                .map_err(|e| csv_error(origin, &e, Some((&columns, &record))))?;
            let number = |v: f64, name: &str| -> Result<f64> {
                if !v.is_finite() || v < 0.0 {
                    return Err(ExitError::parse(
                        origin,
                        line_no,
                        name,
                        format!("{v} is not finite and >= 0"),
                    ));
                }
                Ok(v)
            };
            let percent = |v: f64, name: &str| -> Result<f64> {
                let v = number(v, name)?;
                if v > 100.0 {
                    return Err(ExitError::parse(
                        origin,
                        line_no,
                        name,
                        format!("{v} % is above 100"),
                    ));
                }
                Ok(v / 100.0)
            };
            rows.push(HadasExitRow {
                name: raw.exit,
                top1: percent(raw.top1, "TOP1_Acc")?,
                top5: percent(raw.top5, "TOP5_Acc")?,
                loss: number(raw.loss, "Loss")?,
            });
        }
        if rows.is_empty() {
            return Err(ExitError::parse(origin, 0, "rows", "no exit rows"));
        }
        Ok(Self {
            path: origin.to_path_buf(),
            rows,
        })
    }

    /// Top-1 accuracies (fractions) in exit order.
    pub fn top1(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r.top1).collect()
    }

    /// Positions for the exits, exit `i` after backbone layer `after_layers[i]`.
    pub fn positions(&self, after_layers: &[usize]) -> Result<Vec<ExitPosition>> {
        if after_layers.len() != self.rows.len() {
            return Err(ExitError::shape(
                format!("exit layers for `{}`", self.path.display()),
                self.rows.len(),
                after_layers.len(),
            ));
        }
        Ok(self
            .rows
            .iter()
            .zip(after_layers)
            .map(|(r, &l)| ExitPosition::new(r.name.clone(), l))
            .collect())
    }

    /// An [`ExitTable`] through the [`SyntheticConfidence`] model. The files do not give the
    /// final classifier's accuracy; pass it as a fraction, or `None` to use the last exit's
    /// (which reads the same features as the classifier).
    pub fn to_table(
        &self,
        after_layers: &[usize],
        final_accuracy: Option<f64>,
        model: &SyntheticConfidence,
    ) -> Result<ExitTable> {
        let positions = self.positions(after_layers)?;
        let top1 = self.top1();
        let last = top1.last().copied().unwrap_or(0.0);
        ExitTable::synthesize(positions, &top1, final_accuracy.unwrap_or(last), model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_name_line_and_field() {
        let e = HadasExitData::parse("Exit,TOP1_Acc,TOP5_Acc,Loss\nExit_1,abc,3,1\n", "x.csv")
            .expect_err("bad number");
        assert!(
            matches!(e, ExitError::Parse { line: 2, ref field, .. } if field == "TOP1_Acc"),
            "{e}"
        );
        let e = HadasExitData::parse("Exit,TOP1_Acc,Loss\n", "x.csv").expect_err("no top5");
        assert!(matches!(e, ExitError::Parse { line: 1, ref field, .. } if field == "TOP5_Acc"));
        let e = HadasExitData::parse("Exit,TOP1_Acc,TOP5_Acc,Loss\nE,120,3,1\n", "x.csv")
            .expect_err("above 100");
        assert!(e.to_string().contains("x.csv"));
        assert!(HadasExitData::parse("Exit,TOP1_Acc,TOP5_Acc,Loss\nE,1,3\n", "x.csv").is_err());
        assert!(HadasExitData::parse("Exit,TOP1_Acc,TOP5_Acc,Loss\n", "x.csv").is_err());
        assert!(matches!(
            HadasExitData::from_csv("/nonexistent/a0.csv"),
            Err(ExitError::Io { .. })
        ));
    }

    use crate::cost::{ExitCosts, ExitHead};
    use crate::policy::ExitRule;
    use crate::table::{ConfidenceMeasure, ExitSelection};
    use crate::testing::{MacsModel, chain_network};
    use crate::thresholds::ThresholdCalibration;
    use approx::assert_relative_eq;
    use dynas_cost::OperatingPoint;
    use dynas_space::Activation;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dynas-data/data/exits/hadas-attentivenas-cifar100"
    );

    fn load(model: &str) -> HadasExitData {
        HadasExitData::from_csv(format!("{DIR}/{model}_exit_accuracy.csv")).expect("shared data")
    }

    #[test]
    fn shared_files_load() {
        let expected = [
            ("a0", 13),
            ("a1", 13),
            ("a2", 14),
            ("a3", 17),
            ("a4", 16),
            ("a5", 17),
        ];
        for (m, n) in expected {
            let d = load(m);
            assert_eq!(d.rows.len(), n, "{m}");
            assert!(d.rows.iter().all(|r| r.top1 <= r.top5), "{m}");
        }
        let a0 = load("a0");
        assert_eq!(a0.rows[0].name, "Exit_1");
        assert_relative_eq!(a0.rows[12].top1, 0.860_270_700_636_942_7, epsilon = 1e-12);
    }

    /// Accounting on the six AttentiveNAS backbones with a MACs-proportional cost model: one exit
    /// after each block of a synthetic chain with as many blocks as the file has exits.
    #[test]
    fn accounting_on_attentivenas_a0_to_a5() {
        let model = MacsModel;
        let point = OperatingPoint::new(None, Some(1_000_000_000), None).unwrap();
        let head = ExitHead::new(16, Activation::Relu, 100).expect("ok");
        let synth = crate::SyntheticConfidence::new(2.0, 4000, 1).expect("ok");
        let cal = ThresholdCalibration::new(0.01, ConfidenceMeasure::MaxSoftmax, 24).expect("ok");
        for m in ["a0", "a1", "a2", "a3", "a4", "a5"] {
            let data = load(m);
            let n = data.rows.len();
            let net = chain_network(n, 100);
            let layers: Vec<usize> = (1..=n).collect();
            let table = data.to_table(&layers, None, &synth).expect("table");
            for (c, r) in data.rows.iter().enumerate() {
                assert_relative_eq!(
                    table.accuracy(c).expect("col"),
                    r.top1,
                    epsilon = 1.0 / 4000.0
                );
            }
            let positions = data.positions(&layers).expect("ok");
            let costs = ExitCosts::compute(&net, &positions, &head, &model, &point).expect("costs");
            let all: Vec<usize> = (0..n).collect();
            let r = table
                .calibrate(&all, &cal, Some(&costs))
                .expect("calibrate");
            let target = data.rows[n - 1].top1 - 0.01;
            assert!(r.statistics.accuracy + 1e-12 >= target, "{m}");
            let expected = r.statistics.expected_cost(&costs).expect("ok");
            let paths = costs
                .active_path_costs(&all, &r.statistics.active)
                .expect("ok");
            let manual: f64 = paths
                .iter()
                .zip(&r.statistics.rates)
                .map(|(c, p)| c.latency_ms * p)
                .sum();
            assert_relative_eq!(expected.latency_ms, manual, max_relative = 1e-12);
            assert_relative_eq!(r.statistics.rates.iter().sum::<f64>(), 1.0, epsilon = 1e-12);
            // Exits must pay off against the static backbone at a 1-point drop.
            assert!(
                expected.macs < costs.full().macs,
                "{m}: {expected:?} vs {:?}",
                costs.full()
            );
            // HADAS's unweighted mean: accuracy is the plain mean of the file's rows (+ final).
            let chosen = r.selection.exits().to_vec();
            let (acc, mean_cost) = table.hadas_mean(&chosen, &costs).expect("ok");
            let from_file = (chosen.iter().map(|&e| data.rows[e].top1).sum::<f64>()
                + data.rows[n - 1].top1)
                / (chosen.len() + 1) as f64;
            assert_relative_eq!(acc, from_file, epsilon = 2.0 / 4000.0);
            assert!(mean_cost.latency_ms > 0.0);
            // Oracle: at least as accurate as the final classifier.
            let oracle = table.oracle(&all).expect("ok");
            assert!(oracle.accuracy + 1e-12 >= table.final_accuracy());
            // Never-exit thresholds reproduce the static network plus the heads' overhead.
            let never =
                ExitSelection::new(all.clone(), ExitRule::MaxSoftmax(vec![f64::INFINITY; n]))
                    .expect("ok");
            let st = table.evaluate(&never).expect("ok");
            assert_relative_eq!(st.rates[n], 1.0);
            assert_relative_eq!(st.accuracy, table.final_accuracy());
        }
    }
}
