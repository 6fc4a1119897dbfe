//! Problems backed by a benchmark table (a CSV in the schema of NAS-Bench-201's
//! `nb201_hw.csv`): every row is one architecture with its measured objectives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dynas_space::{Dimension, Genotype, Nb201Space, Network, SearchSpace, SpaceError};

use crate::error::{Result, SearchError};
use crate::pareto::ParetoFront;
use crate::problem::{Evaluation, Objective, Problem, content_fingerprint};

/// The NAS-Bench-201 operations in the code order of `nb201_hw.csv` (`op0..op5` values).
pub use dynas_space::nb201::NB201_OPS;

fn nb201_space() -> &'static Nb201Space {
    static SPACE: std::sync::OnceLock<Nb201Space> = std::sync::OnceLock::new();
    SPACE.get_or_init(Nb201Space::new)
}

/// Parses a NAS-Bench-201 arch string (`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`) into the op codes
/// of its six edges in the order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2 (via
/// [`Nb201Space::parse_arch_str`]).
pub fn parse_nb201_arch_str(text: &str) -> Result<Vec<usize>> {
    Ok(nb201_space().parse_arch_str(text.trim())?.into_genes())
}

/// Formats op codes as a NAS-Bench-201 arch string (inverse of [`parse_nb201_arch_str`]);
/// `None` unless there are six codes below 5.
pub fn nb201_arch_str(ops: &[usize]) -> Option<String> {
    nb201_space().arch_str(&Genotype::new(ops.to_vec())).ok()
}

/// The choice space of a table: one dimension per gene column, with the values found there.
/// It has no network description, so [`SearchSpace::decode`] returns an error.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSpace {
    name: String,
    dimensions: Vec<Dimension>,
}

impl TableSpace {
    /// A table space with the given dimensions.
    pub fn new(name: impl Into<String>, dimensions: Vec<Dimension>) -> Self {
        Self {
            name: name.into(),
            dimensions,
        }
    }
}

impl SearchSpace for TableSpace {
    fn name(&self) -> &str {
        &self.name
    }
    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }
    fn decode(&self, genotype: &Genotype) -> dynas_space::Result<Network> {
        self.validate(genotype)?;
        Err(SpaceError::InvalidSpace(format!(
            "table space `{}` has no network description",
            self.name
        )))
    }
}

#[derive(Clone, Debug)]
struct Row {
    label: Option<String>,
    values: Option<Vec<f64>>,
}

/// How genes are read from a table's columns.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum GeneColumns {
    /// `op0, op1, ...` columns if present, else an `arch_str` column (NAS-Bench-201 strings).
    #[default]
    Auto,
    /// These integer-valued columns, one gene each.
    Columns(Vec<String>),
    /// NAS-Bench-201 arch strings in this column.
    Nb201ArchStr(String),
}

/// A problem whose evaluations are rows of a table. Rows with a missing or non-finite value
/// in an objective column, and genotypes without a row, are infeasible.
#[derive(Clone, Debug)]
pub struct TableProblem {
    name: String,
    path: PathBuf,
    fingerprint: String,
    space: TableSpace,
    objectives: Vec<Objective>,
    rows: HashMap<Genotype, Row>,
    order: Vec<Genotype>,
}

fn is_missing(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "" | "nan" | "na" | "n/a" | "null" | "none" | "-"
    )
}

impl TableProblem {
    /// Reads `path`, with genes found automatically (see [`GeneColumns::Auto`]) and the
    /// objectives named after columns.
    pub fn from_csv(path: impl AsRef<Path>, objectives: Vec<Objective>) -> Result<Self> {
        Self::from_csv_with(path, objectives, GeneColumns::Auto)
    }

    /// Reads `path` with explicit gene columns.
    pub fn from_csv_with(
        path: impl AsRef<Path>,
        objectives: Vec<Objective>,
        genes: GeneColumns,
    ) -> Result<Self> {
        let path = path.as_ref();
        if objectives.is_empty() {
            return Err(SearchError::invalid("objectives", "at least one is needed"));
        }
        let bytes = dynas_space::files::read_input(path).map_err(|e| SearchError::io(path, e))?;
        let fingerprint = content_fingerprint(&bytes);
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes));
        let headers = reader.headers().map_err(|e| csv_err(path, e))?.clone();
        if let Some((name, first, second)) = dynas_cost::table::duplicate_column(headers.iter()) {
            return Err(SearchError::Parse {
                path: path.to_path_buf(),
                line: Some(1),
                column: Some(name),
                reason: format!(
                    "the column appears twice in the header (columns {first} and {second}): \
                     which one holds the data is ambiguous"
                ),
            });
        }
        let column = |name: &str| -> Result<usize> {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| SearchError::Parse {
                    path: path.to_path_buf(),
                    line: Some(1),
                    column: Some(name.to_string()),
                    reason: format!(
                        "no such column (columns: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                })
        };
        enum Source {
            Ints(Vec<usize>),
            Arch(usize),
        }
        let source = match &genes {
            GeneColumns::Columns(cols) => {
                Source::Ints(cols.iter().map(|c| column(c)).collect::<Result<_>>()?)
            }
            GeneColumns::Nb201ArchStr(c) => Source::Arch(column(c)?),
            GeneColumns::Auto => {
                let mut ops = Vec::new();
                while let Some(i) = headers.iter().position(|h| h == format!("op{}", ops.len())) {
                    ops.push(i);
                }
                if !ops.is_empty() {
                    Source::Ints(ops)
                } else {
                    Source::Arch(column("arch_str")?)
                }
            }
        };
        let label_col = headers.iter().position(|h| h == "arch_str");
        let objective_cols: Vec<usize> = objectives
            .iter()
            .map(|o| column(&o.name))
            .collect::<Result<_>>()?;

        let mut raw: Vec<(u64, Vec<usize>, Row)> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_err(path, e))?;
            let line = record.position().map_or(0, |p| p.line());
            let field_err = |col: usize, reason: String| SearchError::Parse {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(headers.get(col).unwrap_or("?").to_string()),
                reason,
            };
            let cell = |col: usize| record.get(col).unwrap_or("");
            let gene_values: Vec<usize> = match &source {
                Source::Ints(cols) => cols
                    .iter()
                    .map(|&c| {
                        cell(c).parse::<usize>().map_err(|e| {
                            field_err(
                                c,
                                format!("`{}` is not a non-negative integer ({e})", cell(c)),
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
                Source::Arch(c) => {
                    parse_nb201_arch_str(cell(*c)).map_err(|e| field_err(*c, e.to_string()))?
                }
            };
            let mut values = Vec::with_capacity(objective_cols.len());
            let mut complete = true;
            for &c in &objective_cols {
                let text = cell(c);
                if is_missing(text) {
                    complete = false;
                    continue;
                }
                let v: f64 = text
                    .parse()
                    .map_err(|e| field_err(c, format!("`{text}` is not a number ({e})")))?;
                if !v.is_finite() {
                    complete = false;
                }
                values.push(v);
            }
            let label = label_col
                .map(|c| cell(c).to_string())
                .filter(|s| !s.is_empty());
            // Genes from op columns and an `arch_str` label that parses as a NAS-Bench-201
            // string: they must name the same cell.
            if let (Source::Ints(_), Some(c), Some(text)) = (&source, label_col, &label)
                && let Ok(ops) = parse_nb201_arch_str(text)
                && ops.len() == gene_values.len()
                && ops != gene_values
            {
                return Err(field_err(
                    c,
                    format!(
                        "`{text}` is the cell {ops:?} but the gene columns say {gene_values:?}; \
                         the row contradicts itself"
                    ),
                ));
            }
            raw.push((
                line,
                gene_values,
                Row {
                    label,
                    values: complete.then_some(values),
                },
            ));
        }
        if raw.is_empty() {
            return Err(SearchError::parse(path, "the table has no rows"));
        }
        // Dimensions: NB201 ops for arch strings, else the distinct values of each column.
        let n_genes = raw[0].1.len();
        let gene_names: Vec<String> = match &source {
            Source::Ints(cols) => cols
                .iter()
                .map(|&c| headers.get(c).unwrap_or("?").to_string())
                .collect(),
            Source::Arch(_) => (0..n_genes).map(|i| format!("op{i}")).collect(),
        };
        let mut dimensions = Vec::with_capacity(n_genes);
        let mut maps: Vec<HashMap<usize, usize>> = Vec::with_capacity(n_genes);
        for (k, name) in gene_names.iter().enumerate() {
            let mut distinct: Vec<usize> = match &source {
                Source::Arch(_) => (0..NB201_OPS.len()).collect(),
                Source::Ints(_) => raw.iter().map(|r| r.1[k]).collect(),
            };
            distinct.sort_unstable();
            distinct.dedup();
            let labels: Vec<String> = match &source {
                Source::Arch(_) => NB201_OPS.iter().map(|s| s.to_string()).collect(),
                Source::Ints(_) => distinct.iter().map(|v| v.to_string()).collect(),
            };
            dimensions.push(Dimension::new(name.clone(), labels)?);
            maps.push(distinct.iter().enumerate().map(|(i, &v)| (v, i)).collect());
        }
        let mut rows = HashMap::with_capacity(raw.len());
        let mut order = Vec::with_capacity(raw.len());
        let mut first_line: HashMap<Genotype, u64> = HashMap::new();
        for (line, gene_values, row) in raw {
            let genes: Vec<usize> = gene_values
                .iter()
                .zip(&maps)
                .map(|(v, m)| m.get(v).copied().unwrap_or(0))
                .collect();
            let genotype = Genotype::new(genes);
            if let Some(prev) = first_line.insert(genotype.clone(), line) {
                return Err(SearchError::Parse {
                    path: path.to_path_buf(),
                    line: Some(line),
                    column: None,
                    reason: format!("architecture `{genotype}` already appears on line {prev}"),
                });
            }
            order.push(genotype.clone());
            rows.insert(genotype, row);
        }
        let name = path
            .file_stem()
            .map_or_else(|| "table".to_string(), |s| s.to_string_lossy().into_owned());
        Ok(Self {
            space: TableSpace::new(name.clone(), dimensions),
            name,
            path: path.to_path_buf(),
            fingerprint,
            objectives,
            rows,
            order,
        })
    }

    /// [`content_fingerprint`] of the file's bytes, as read.
    pub fn content_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The file the table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the table has no rows (never true for a loaded table).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The label (arch string) of a genotype's row, if any.
    pub fn label(&self, genotype: &Genotype) -> Option<&str> {
        self.rows.get(genotype).and_then(|r| r.label.as_deref())
    }

    /// Every row's genotype and evaluation, in file order.
    pub fn evaluations(&self) -> impl Iterator<Item = (&Genotype, Evaluation)> + '_ {
        self.order.iter().map(|g| (g, self.lookup(g)))
    }

    /// The true Pareto front of the table (every feasible row considered), labelled.
    pub fn true_front(&self) -> ParetoFront {
        let evals: Vec<(&Genotype, Evaluation)> = self.evaluations().collect();
        let mut front =
            ParetoFront::from_evaluations(&self.objectives, evals.iter().map(|(g, e)| (*g, e)));
        self.label_front(&mut front);
        front
    }

    /// Sets each point's label to its row's arch string.
    pub fn label_front(&self, front: &mut ParetoFront) {
        for p in &mut front.points {
            p.label = self.label(&p.genotype).map(str::to_string);
        }
    }

    fn lookup(&self, genotype: &Genotype) -> Evaluation {
        match self.rows.get(genotype).and_then(|r| r.values.as_ref()) {
            Some(values) => Evaluation::feasible(values.clone()),
            None => Evaluation::unknown(self.objectives.len()),
        }
    }
}

impl Problem for TableProblem {
    fn name(&self) -> &str {
        &self.name
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        self.space.validate(genotype)?;
        Ok(self.lookup(genotype))
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        // A hash lookup is cheaper than a thread hand-off.
        genotypes.iter().map(|g| self.evaluate(g)).collect()
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.clone())
    }
    fn label(&self, genotype: &Genotype) -> Option<String> {
        TableProblem::label(self, genotype)
            .map(str::to_string)
            .or_else(|| self.space.describe(genotype).ok())
    }
}

/// An [`crate::AccuracySource`] reading accuracy (%) from a column of a benchmark table, for
/// genotypes of a space whose genes are coded like the table's (e.g. `Nb201Space` and
/// `nb201_hw.csv`).
#[derive(Clone, Debug)]
pub struct TableAccuracy {
    table: TableProblem,
    name: String,
}

impl TableAccuracy {
    /// Accuracy from `column` of the CSV at `path` (genes found as in [`TableProblem::from_csv`]).
    pub fn from_csv(path: impl AsRef<Path>, column: &str) -> Result<Self> {
        let table = TableProblem::from_csv(path, vec![Objective::maximize(column)])?;
        let name = format!("{}:{column}", table.name);
        Ok(Self { table, name })
    }

    /// Checks that `space` has the table's dimensions (count and number of choices).
    pub fn check_space(&self, space: &dyn SearchSpace) -> Result<()> {
        let mine: Vec<usize> = self
            .table
            .space
            .dimensions
            .iter()
            .map(Dimension::len)
            .collect();
        let theirs: Vec<usize> = space.dimensions().iter().map(Dimension::len).collect();
        if mine != theirs {
            return Err(SearchError::invalid(
                "table accuracy",
                format!(
                    "table `{}` has choices {mine:?}, space `{}` has {theirs:?}",
                    self.table.path.display(),
                    space.name()
                ),
            ));
        }
        Ok(())
    }
}

impl crate::problem::AccuracySource for TableAccuracy {
    fn name(&self) -> &str {
        &self.name
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.table.fingerprint.clone())
    }
    fn accuracy(&self, genotype: &Genotype, _network: &Network) -> Result<f64> {
        let e = self.table.evaluate(genotype)?;
        if !e.is_feasible() {
            return Err(SearchError::Evaluation {
                genotype: genotype.to_string(),
                reason: format!("no accuracy in `{}`", self.table.path.display()),
            });
        }
        Ok(e.values[0])
    }
}

fn csv_err(path: &Path, e: csv::Error) -> SearchError {
    match e.kind() {
        csv::ErrorKind::Io(_) => match e.into_kind() {
            csv::ErrorKind::Io(io) => SearchError::io(path, io),
            _ => SearchError::parse(path, "I/O error"),
        },
        _ => SearchError::Parse {
            path: path.to_path_buf(),
            line: e.position().map(|p| p.line()),
            column: None,
            reason: e.to_string(),
        },
    }
}
