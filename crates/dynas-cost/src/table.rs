//! Per-architecture tables (like NAS-Bench-201's `nb201_hw.csv`) as exact cost models, and
//! the NAS-Bench-201 cell encoding shared with the predictors and the command line.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use dynas_space::Network;
use serde::{Deserialize, Serialize};

use crate::device::OperatingPoint;
use crate::error::{CostError, Result};
use crate::model::{Cost, CostModel};

use dynas_space::nb201;
pub use dynas_space::nb201::{NB201_EDGES, NB201_OPS};

/// A NAS-Bench-201 cell: the op index (0..=4, [`NB201_OPS`]) on each of the six edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Nb201Cell(pub [u8; 6]);

impl Nb201Cell {
    /// A cell from six op indices.
    pub fn from_ops(ops: &[usize]) -> Result<Self> {
        if ops.len() != 6 {
            return Err(CostError::InvalidParameter {
                name: "ops".to_string(),
                reason: format!("a NAS-Bench-201 cell has 6 edges, got {}", ops.len()),
            });
        }
        let mut cell = [0u8; 6];
        for (i, (&o, c)) in ops.iter().zip(cell.iter_mut()).enumerate() {
            if o >= NB201_OPS.len() {
                return Err(CostError::InvalidParameter {
                    name: format!("op{i}"),
                    reason: format!("op index must be 0..=4, got {o}"),
                });
            }
            *c = o as u8;
        }
        Ok(Self(cell))
    }

    /// The op indices.
    pub fn ops(&self) -> [usize; 6] {
        self.0.map(usize::from)
    }

    /// Whether the output node is reachable from the input through non-`none` edges.
    pub fn is_connected(&self) -> bool {
        self.live_edges().iter().any(|&l| l)
    }

    /// For each edge, whether it lies on a path from the input node to the output node
    /// through non-`none` edges (an op off every such path computes nothing that reaches the
    /// output).
    pub fn live_edges(&self) -> [bool; 6] {
        let on = |e: usize| self.0[e] != 0;
        // Forward reachability from node 0.
        let mut from_in = [true, false, false, false];
        for (e, &(to, from)) in NB201_EDGES.iter().enumerate() {
            if on(e) && from_in[from] {
                from_in[to] = true;
            }
        }
        // Backward reachability to node 3 (edges sorted by `to`, so iterate in reverse).
        let mut to_out = [false, false, false, true];
        for (e, &(to, from)) in NB201_EDGES.iter().enumerate().rev() {
            if on(e) && to_out[to] {
                to_out[from] = true;
            }
        }
        let mut live = [false; 6];
        for (e, &(to, from)) in NB201_EDGES.iter().enumerate() {
            live[e] = on(e) && from_in[from] && to_out[to];
        }
        live
    }
}

impl fmt::Display for Nb201Cell {
    /// The standard arch string, e.g. `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        nb201::write_arch_str(&self.ops(), f)
    }
}

impl FromStr for Nb201Cell {
    type Err = CostError;

    /// Parses a standard arch string with the space's codec ([`nb201::parse_arch_ops`]).
    fn from_str(s: &str) -> Result<Self> {
        let ops = nb201::parse_arch_ops(s).map_err(|e| CostError::InvalidParameter {
            name: "arch_str".to_string(),
            reason: e.to_string(),
        })?;
        Self::from_ops(&ops)
    }
}

/// Architectures and one numeric target column read from a CSV in the schema of
/// `nb201_hw.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchTargets {
    /// The cell of every kept row.
    pub cells: Vec<Nb201Cell>,
    /// The target of every kept row.
    pub targets: Vec<f64>,
    /// Rows skipped because the target was empty, non-numeric or not finite.
    pub skipped: usize,
}

/// Reads the architecture (`arch_str`, or `op0..op5` when there is no `arch_str` column) and
/// the numeric `target` column of every row. Rows whose target is missing or non-numeric are
/// skipped and counted; a missing column, an unreadable file or a malformed architecture is
/// an error naming the file, line and column.
pub fn read_arch_targets(path: impl AsRef<Path>, target: &str) -> Result<ArchTargets> {
    let columns = read_arch_columns(path.as_ref(), &[target])?;
    let mut out = ArchTargets {
        cells: Vec::with_capacity(columns.cells.len()),
        targets: Vec::with_capacity(columns.cells.len()),
        skipped: 0,
    };
    for (cell, value) in columns.cells.into_iter().zip(&columns.values[0]) {
        match value {
            Some(v) => {
                out.cells.push(cell);
                out.targets.push(*v);
            }
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

/// Every row's cell and, per requested column, its finite number (`None` when empty or not
/// a number).
struct ArchColumns {
    cells: Vec<Nb201Cell>,
    values: Vec<Vec<Option<f64>>>,
}

/// A CSV field as trimmed text (empty when absent).
fn text(field: Option<&[u8]>) -> std::result::Result<&str, std::str::Utf8Error> {
    std::str::from_utf8(field.unwrap_or(b"")).map(str::trim)
}

/// The first column name (trimmed) that appears twice in a header, with both 1-based column
/// numbers.
pub fn duplicate_column<'a>(
    header: impl IntoIterator<Item = &'a str>,
) -> Option<(String, usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in header.into_iter().enumerate() {
        if let Some(first) = seen.insert(name.trim(), i + 1) {
            return Some((name.trim().to_string(), first, i + 1));
        }
    }
    None
}

/// One pass over the CSV with a reused byte record: no allocation per row.
fn read_arch_columns(path: &Path, columns: &[&str]) -> Result<ArchColumns> {
    let bytes = dynas_space::files::read_input(path).map_err(|e| CostError::io(path, e))?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| CostError::parse(path, format!("header: {e}")))?
        .clone();
    if let Some((name, first, second)) = duplicate_column(headers.iter()) {
        return Err(CostError::parse(
            path,
            format!(
                "column `{name}` appears twice in the header (columns {first} and {second}): \
                 which one holds the data is ambiguous"
            ),
        ));
    }
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let value_cols = columns
        .iter()
        .map(|&name| {
            col(name).ok_or_else(|| {
                CostError::parse(
                    path,
                    format!(
                        "no column `{name}` (columns: {})",
                        headers.iter().collect::<Vec<_>>().join(",")
                    ),
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let arch_col = col("arch_str");
    let op_cols: Option<Vec<usize>> = (0..6).map(|i| col(&format!("op{i}"))).collect();
    if arch_col.is_none() && op_cols.is_none() {
        return Err(CostError::parse(
            path,
            "no column `arch_str` and no columns `op0`..`op5`",
        ));
    }
    // Rows of NAS-Bench-201 tables are over 100 bytes: enough capacity without counting.
    let rows = bytes.len() / 100;
    let mut out = ArchColumns {
        cells: Vec::with_capacity(rows),
        values: vec![Vec::with_capacity(rows); columns.len()],
    };
    let mut record = csv::ByteRecord::new();
    let mut line = 1;
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| CostError::parse(path, format!("line {}: {e}", line + 1)))?
    {
        line += 1;
        let from_ops = match &op_cols {
            Some(cols) => {
                let mut ops = [0usize; 6];
                for (k, (&c, op)) in cols.iter().zip(ops.iter_mut()).enumerate() {
                    *op = text(record.get(c))
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| {
                            CostError::parse(
                                path,
                                format!("line {line}, column `op{k}`: not an op index"),
                            )
                        })?;
                }
                Some(
                    Nb201Cell::from_ops(&ops)
                        .map_err(|e| CostError::parse(path, format!("line {line}: {e}")))?,
                )
            }
            None => None,
        };
        let cell = match (arch_col, from_ops) {
            (Some(c), from_ops) => text(record.get(c))
                .map_err(|e| CostError::InvalidParameter {
                    name: "arch_str".to_string(),
                    reason: e.to_string(),
                })
                .and_then(str::parse::<Nb201Cell>)
                .map_err(|e| CostError::parse(path, format!("line {line}, column `arch_str`: {e}")))
                .and_then(|cell| match from_ops {
                    Some(ops) if ops != cell => Err(CostError::parse(
                        path,
                        format!(
                            "line {line}: `arch_str` is {cell} but columns `op0`..`op5` say \
                             {:?} ({ops}); the row contradicts itself",
                            ops.ops()
                        ),
                    )),
                    _ => Ok(cell),
                })?,
            (None, Some(cell)) => cell,
            (None, None) => return Err(CostError::parse(path, "no architecture column")),
        };
        out.cells.push(cell);
        for (&c, values) in value_cols.iter().zip(out.values.iter_mut()) {
            values.push(
                text(record.get(c))
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .filter(|v| v.is_finite()),
            );
        }
    }
    Ok(out)
}

/// A per-architecture table as an exact [`CostModel`]: a network's cost is its row, found by
/// [`Network::genes`] for NAS-Bench-201 tables and by [`Network::arch_id`] otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct TableModel {
    name: String,
    rows: Rows,
    skipped: usize,
}

/// Rows by arch id: any string, or NAS-Bench-201 cells (parsed from the network's `arch_id`
/// by the space's codec, so loading formats no strings).
#[derive(Clone, Debug, PartialEq)]
enum Rows {
    ById(HashMap<String, Cost>),
    Nb201(HashMap<Nb201Cell, Cost>),
}

impl TableModel {
    /// A table from (arch id, cost) pairs.
    pub fn new(name: impl Into<String>, rows: impl IntoIterator<Item = (String, Cost)>) -> Self {
        Self {
            name: name.into(),
            rows: Rows::ById(rows.into_iter().collect()),
            skipped: 0,
        }
    }

    /// Reads a NAS-Bench-201 style CSV: latency from `latency_column` (ms) and optionally
    /// energy from `energy_column` (mJ). Architectures are keyed by their canonical arch
    /// string (from `arch_str`, or built from `op0..op5`). Rows without a numeric latency are
    /// skipped ([`TableModel::skipped`]).
    pub fn from_csv(
        path: impl AsRef<Path>,
        latency_column: &str,
        energy_column: Option<&str>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let mut wanted = vec![latency_column];
        wanted.extend(energy_column);
        let columns = read_arch_columns(path, &wanted)?;
        let mut rows = HashMap::with_capacity(columns.cells.len());
        let mut skipped = 0;
        for (i, cell) in columns.cells.iter().enumerate() {
            let Some(latency_ms) = columns.values[0][i] else {
                skipped += 1;
                continue;
            };
            let mut cost = Cost::latency(latency_ms);
            cost.energy_mj = columns.values.get(1).and_then(|e| e[i]);
            rows.insert(*cell, cost);
        }
        Ok(Self {
            name: format!("{}[{latency_column}]", path.display()),
            rows: Rows::Nb201(rows),
            skipped,
        })
    }

    /// Number of architectures.
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::ById(r) => r.len(),
            Rows::Nb201(r) => r.len(),
        }
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows skipped while loading (no numeric latency).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The row of `arch_id`.
    pub fn get(&self, arch_id: &str) -> Option<&Cost> {
        match &self.rows {
            Rows::ById(r) => r.get(arch_id),
            Rows::Nb201(r) => r.get(&arch_id.parse::<Nb201Cell>().ok()?),
        }
    }
}

impl CostModel for TableModel {
    fn name(&self) -> &str {
        "table"
    }

    fn estimate(&self, network: &Network, _point: &OperatingPoint) -> Result<Cost> {
        let unknown = || CostError::UnknownArchitecture {
            table: self.name.clone(),
            arch: network
                .arch_id
                .clone()
                .unwrap_or_else(|| "<network without arch_id>".to_string()),
        };
        let row = match (&self.rows, &network.genes) {
            // A NAS-Bench-201 network carries its op indices: no string is parsed.
            (Rows::Nb201(rows), Some(genes)) => rows.get(&Nb201Cell::from_ops(genes.genes())?),
            _ => self.get(network.arch_id.as_deref().ok_or_else(unknown)?),
        };
        row.copied().ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_string_round_trips_and_liveness() {
        let s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
        let c: Nb201Cell = s.parse().unwrap();
        assert_eq!(c.ops(), [3, 3, 4, 1, 3, 1]);
        assert_eq!(c.to_string(), s);
        // Only edge 3<-0 on: every other op is dead.
        let c = Nb201Cell::from_ops(&[3, 3, 3, 1, 0, 0]).unwrap();
        assert_eq!(c.live_edges(), [false, false, false, true, false, false]);
        // Output unreachable.
        let c = Nb201Cell::from_ops(&[3, 3, 3, 0, 0, 0]).unwrap();
        assert!(!c.is_connected());
        assert!(
            "|foo~0|+|none~0|none~1|+|none~0|none~1|none~2|"
                .parse::<Nb201Cell>()
                .is_err()
        );
        assert!(Nb201Cell::from_ops(&[5, 0, 0, 0, 0, 0]).is_err());
    }
}

#[cfg(test)]
mod typed_arch_tests {
    use approx::assert_relative_eq;
    use dynas_space::{Nb201Space, SearchSpace};

    use super::*;

    #[test]
    fn nb201_genes_name_the_same_cell_as_the_arch_string() {
        let space = Nb201Space::new();
        for genotype in space.enumerate(20_000).expect("small space") {
            let network = space.decode(&genotype).expect("decodes");
            let from_genes = Nb201Cell::from_ops(genotype.genes()).expect("valid ops");
            let from_string: Nb201Cell = network
                .arch_id
                .as_deref()
                .expect("tagged")
                .parse()
                .expect("parses");
            assert_eq!(from_genes, from_string);
        }
    }

    #[test]
    fn table_rows_are_found_by_genes_without_the_arch_string() {
        let space = Nb201Space::new();
        let genotype = space.largest();
        let network = space.decode(&genotype).expect("decodes");
        let cell = Nb201Cell::from_ops(genotype.genes()).expect("valid ops");
        let model = TableModel {
            name: "t".to_string(),
            rows: Rows::Nb201(HashMap::from([(cell, Cost::latency(3.5))])),
            skipped: 0,
        };
        let point = OperatingPoint::default();
        let mut untagged = network.clone();
        untagged.arch_id = None;
        assert_relative_eq!(model.estimate(&untagged, &point).unwrap().latency_ms, 3.5);
        let mut unknown = network;
        unknown.genes = Some(space.smallest());
        assert!(matches!(
            model.estimate(&unknown, &point),
            Err(CostError::UnknownArchitecture { .. })
        ));
    }
}
