//! Pareto fronts of a search exported to JSON, CSV and SVG. The math on objective vectors
//! (dominance, non-dominated sorting, crowding distance, hypervolume, IGD) lives in
//! [`dynas_core::pareto`] and is re-exported here.

use std::path::Path;

use dynas_space::Genotype;
use plotters::prelude::{
    ChartBuilder, Circle, Color, IntoDrawingArea, LineSeries, RGBColor, SVGBackend, WHITE,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::problem::{Evaluation, Objective};

pub use dynas_core::pareto::{
    crowding_distance, crowding_distance_with, dominance, dominates, fast_non_dominated_sort,
    hypervolume, igd, non_dominated, ranks,
};

/// One architecture of a Pareto front.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    /// The genotype.
    pub genotype: Genotype,
    /// A human-readable identifier (e.g. the NAS-Bench-201 arch string, or the space's
    /// `name=value` description), where known. Fronts returned by the executor always have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Every gene by dimension name, with the chosen value (filled by the executor).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub genes: Vec<GeneChoice>,
    /// Objective values in the problem's units and directions.
    pub values: Vec<f64>,
}

/// One gene of a [`FrontPoint`]: the dimension's name and the label of the chosen value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneChoice {
    /// The dimension.
    pub dimension: String,
    /// The chosen value's label.
    pub value: String,
}

/// The genes of `genotype` named by `dimensions` (empty when they do not fit).
pub fn named_genes(dimensions: &[dynas_space::Dimension], genotype: &Genotype) -> Vec<GeneChoice> {
    if dimensions.len() != genotype.len() {
        return Vec::new();
    }
    dimensions
        .iter()
        .zip(genotype.genes())
        .map(|(d, &i)| GeneChoice {
            dimension: d.name().to_string(),
            value: d
                .labels()
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("#{i}")),
        })
        .collect()
}

/// A Pareto front with the objectives it is expressed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoFront {
    /// The objectives.
    pub objectives: Vec<Objective>,
    /// The non-dominated feasible points, sorted by the first objective (best first).
    pub points: Vec<FrontPoint>,
}

impl ParetoFront {
    /// The non-dominated feasible entries of `records` (duplicates of a genotype kept once).
    pub fn from_evaluations<'a>(
        objectives: &[Objective],
        records: impl IntoIterator<Item = (&'a Genotype, &'a Evaluation)>,
    ) -> Self {
        let mut seen = std::collections::HashSet::new();
        let feasible: Vec<(&Genotype, &Evaluation)> = records
            .into_iter()
            .filter(|(g, e)| {
                e.is_feasible() && e.values.iter().all(|v| v.is_finite()) && seen.insert(*g)
            })
            .collect();
        let mins: Vec<Vec<f64>> = feasible
            .iter()
            .map(|(_, e)| e.minimised(objectives))
            .collect();
        let mut points: Vec<(Vec<f64>, FrontPoint)> = non_dominated(&mins)
            .into_iter()
            .map(|i| {
                (
                    mins[i].clone(),
                    FrontPoint {
                        genotype: feasible[i].0.clone(),
                        label: None,
                        genes: Vec::new(),
                        values: feasible[i].1.values.clone(),
                    },
                )
            })
            .collect();
        points.sort_by(|a, b| {
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Self {
            objectives: objectives.to_vec(),
            points: points.into_iter().map(|(_, p)| p).collect(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the front is empty.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points in minimisation form.
    pub fn minimised(&self) -> Vec<Vec<f64>> {
        self.points
            .iter()
            .map(|p| {
                p.values
                    .iter()
                    .zip(&self.objectives)
                    .map(|(&v, o)| o.to_min(v))
                    .collect()
            })
            .collect()
    }

    /// Writes the front as pretty JSON, crash-safely ([`crate::write_atomically`]).
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SearchError::parse(path, e.to_string()))?;
        crate::write_atomically(path, text.as_bytes())
    }

    /// Writes the front as CSV: `genotype,label,<objective names...>`, crash-safely.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["genotype".to_string(), "label".to_string()];
        header.extend(self.objectives.iter().map(|o| o.name.clone()));
        writer
            .write_record(&header)
            .map_err(|e| csv_error(path, e))?;
        for p in &self.points {
            let mut row = vec![p.genotype.to_string(), p.label.clone().unwrap_or_default()];
            row.extend(p.values.iter().map(|v| v.to_string()));
            writer.write_record(&row).map_err(|e| csv_error(path, e))?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| SearchError::io(path, e.into_error()))?;
        crate::write_atomically(path, &bytes)
    }

    /// An SVG scatter plot (drawn with plotters) of the first two objectives, front points
    /// joined by a line, optionally over a reference front drawn in grey.
    pub fn to_svg(&self, reference: Option<&ParetoFront>) -> Result<String> {
        if self.objectives.len() < 2 {
            return Err(SearchError::invalid(
                "plot",
                "needs at least two objectives",
            ));
        }
        let all: Vec<&FrontPoint> = self
            .points
            .iter()
            .chain(reference.iter().flat_map(|r| r.points.iter()))
            .collect();
        let range = |k: usize| {
            let lo = all
                .iter()
                .map(|p| p.values[k])
                .fold(f64::INFINITY, f64::min);
            let hi = all
                .iter()
                .map(|p| p.values[k])
                .fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() || !hi.is_finite() {
                (0.0, 1.0)
            } else if hi > lo {
                // A little room so the extreme marks are not cut by the axes.
                let pad = (hi - lo) * 0.03;
                (lo - pad, hi + pad)
            } else {
                (lo - 0.5, lo + 0.5)
            }
        };
        let (x0, x1) = range(0);
        let (y0, y1) = range(1);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (640, 480)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_error)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(5)
                .y_labels(5)
                .label_style(("sans-serif", 12))
                .axis_desc_style(("sans-serif", 14))
                .x_desc(axis_label(&self.objectives[0]))
                .y_desc(axis_label(&self.objectives[1]))
                .draw()
                .map_err(plot_error)?;
            let grey = RGBColor(0x99, 0x99, 0x99);
            let red = RGBColor(0xd6, 0x27, 0x28);
            let fronts = reference
                .map(|r| (r, grey, 4))
                .into_iter()
                .chain([(self, red, 3)]);
            for (front, colour, radius) in fronts {
                let mut pts: Vec<(f64, f64)> = front
                    .points
                    .iter()
                    .map(|p| (p.values[0], p.values[1]))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), colour))
                    .map_err(plot_error)?;
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, radius, colour.filled())))
                    .map_err(plot_error)?;
            }
            root.present().map_err(plot_error)?;
        }
        Ok(svg)
    }

    /// Writes [`ParetoFront::to_svg`] to a file.
    pub fn write_svg(&self, path: impl AsRef<Path>, reference: Option<&ParetoFront>) -> Result<()> {
        let path = path.as_ref();
        crate::write_atomically(path, self.to_svg(reference)?.as_bytes())
    }
}

fn axis_label(o: &Objective) -> String {
    format!("{} ({:?})", o.name, o.direction).to_lowercase()
}

fn plot_error(e: impl std::fmt::Display) -> SearchError {
    SearchError::invalid("plot", e.to_string())
}

fn csv_error(path: &Path, e: csv::Error) -> SearchError {
    SearchError::parse(path, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn sorting_gives_the_known_fronts() {
        // Deb's textbook example: three layers.
        let pts = vec![
            vec![1.0, 5.0],
            vec![2.0, 3.0],
            vec![4.0, 1.0],
            vec![2.0, 5.0],
            vec![3.0, 4.0],
            vec![5.0, 2.0],
            vec![5.0, 5.0],
            vec![2.0, 3.0],
        ];
        let fronts = fast_non_dominated_sort(&pts);
        let sorted: Vec<Vec<usize>> = fronts
            .into_iter()
            .map(|mut f| {
                f.sort_unstable();
                f
            })
            .collect();
        assert_eq!(sorted, vec![vec![0, 1, 2, 7], vec![3, 4, 5], vec![6]]);
        assert_eq!(non_dominated(&pts), vec![0, 1, 2, 7]);
    }

    #[test]
    fn crowding_matches_pymoo() {
        // Hand-computed following pymoo 0.6 calc_crowding_distance step by step.
        let f = vec![
            vec![0.0, 1.0],
            vec![0.25, 0.5],
            vec![0.5, 0.25],
            vec![1.0, 0.0],
            vec![0.25, 0.5],
        ];
        let cd = crowding_distance(&f);
        assert!(cd[0].is_infinite() && cd[3].is_infinite());
        // point 1: x gaps (0.25+0.25)/1, y gaps (0.25+0.5)/1 -> 1.25/2
        assert_relative_eq!(cd[1], 0.625);
        // point 2: x (0.25+0.5), y (0.25+0.25) -> 1.25/2
        assert_relative_eq!(cd[2], 0.625);
        assert_relative_eq!(cd[4], 0.0);
        assert!(crowding_distance(&f[..2]).iter().all(|c| c.is_infinite()));
        // Constant objective contributes 0 (numpy's NaN replaced by 0).
        let flat = vec![vec![1.0, 0.0], vec![1.0, 1.0], vec![1.0, 2.0]];
        assert_relative_eq!(crowding_distance(&flat)[1], 1.0 / 2.0);
    }

    #[test]
    fn crowding_passes_pymoos_own_test_vectors() {
        // pymoo tests/operators/test_crowding.py (FunctionalDiversity, filter_out_duplicates).
        let one = vec![
            vec![1.0, 1.0],
            vec![1.0, 1.0],
            vec![0.5, 1.5],
            vec![0.0, 2.0],
        ];
        let cd = crowding_distance(&one);
        assert!(cd[0].is_infinite() && cd[3].is_infinite());
        assert_relative_eq!(cd[1], 0.0);
        assert_relative_eq!(cd[2], 1.0);
        let two = vec![
            vec![1.0, 1.0],
            vec![1.0, 1.0],
            vec![1.0, 1.0],
            vec![0.5, 1.5],
            vec![0.0, 2.0],
        ];
        let cd = crowding_distance(&two);
        assert!(cd[0].is_infinite() && cd[4].is_infinite());
        assert_eq!((cd[1], cd[2]), (0.0, 0.0));
        assert_relative_eq!(cd[3], 1.0);
        let flat = vec![
            vec![1.0, 1.5, 0.5, 1.0],
            vec![1.0, 0.5, 1.5, 1.0],
            vec![1.0, 0.0, 2.0, 1.5],
        ];
        let cd = crowding_distance(&flat);
        assert!(cd[0].is_infinite() && cd[2].is_infinite());
        assert_relative_eq!(cd[1], 0.75);
        // Without filtering, the twin of a point is a neighbour at distance 0.
        let cd = crowding_distance_with(&one, false);
        assert!(cd[1] > 0.0);
    }

    #[test]
    fn hypervolume_2d_and_3d_exact() {
        let pts = vec![
            vec![1.0, 3.0],
            vec![2.0, 2.0],
            vec![3.0, 1.0],
            vec![3.0, 3.0],
        ];
        assert_relative_eq!(hypervolume(&pts, &[4.0, 4.0]).unwrap(), 6.0);
        // Outside the reference point contributes nothing.
        assert_relative_eq!(hypervolume(&[vec![5.0, 0.0]], &[4.0, 4.0]).unwrap(), 0.0);
        // 3-D: union of two boxes [0,2]^2x[0,1] and [0,1]^3 shifted.
        let pts3 = vec![vec![0.0, 0.0, 1.0], vec![1.0, 1.0, 0.0]];
        // box A: (2-0)(2-0)(2-1)=4, box B: (1)(1)(2)=2, overlap: 1*1*1=1 -> 5
        assert_relative_eq!(hypervolume(&pts3, &[2.0, 2.0, 2.0]).unwrap(), 5.0);
        let single = vec![vec![0.5, 0.5, 0.5]];
        assert_relative_eq!(hypervolume(&single, &[1.0, 1.0, 1.0]).unwrap(), 0.125);
        assert!(hypervolume(&pts, &[1.0]).is_err());
    }

    #[test]
    fn fronts_export_to_json_csv_and_svg() {
        use crate::problem::{Evaluation, Objective};
        let objectives = vec![Objective::minimize("lat"), Objective::maximize("acc")];
        let g = |v: usize| Genotype::new(vec![v]);
        let evals = [
            (g(0), Evaluation::feasible(vec![1.0, 50.0])),
            (g(1), Evaluation::feasible(vec![2.0, 70.0])),
            (g(2), Evaluation::feasible(vec![3.0, 60.0])), // dominated by g(1)
            (g(3), Evaluation::unknown(2)),                // infeasible
            (g(4), Evaluation::with_violation(vec![0.5, 90.0], 1.0)),
        ];
        let front = ParetoFront::from_evaluations(&objectives, evals.iter().map(|(g, e)| (g, e)));
        let kept: Vec<&Genotype> = front.points.iter().map(|p| &p.genotype).collect();
        assert_eq!(kept, vec![&g(0), &g(1)]);
        assert_eq!(front.minimised(), vec![vec![1.0, -50.0], vec![2.0, -70.0]]);
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("f.json");
        front.write_json(&json).unwrap();
        let back: ParetoFront =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(back, front);
        let csv = dir.path().join("f.csv");
        front.write_csv(&csv).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(text.lines().next(), Some("genotype,label,lat,acc"));
        assert_eq!(text.lines().count(), 3);
        let svg = front.to_svg(Some(&front)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // One mark per point of each front, and both axes named after their objective.
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("lat (minimize)") && svg.contains("acc (maximize)"));
        let file = dir.path().join("f.svg");
        front.write_svg(&file, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file)
                .unwrap()
                .matches("<circle")
                .count(),
            2
        );
        assert!(
            front
                .write_json(dir.path().join("no/such/dir.json"))
                .is_err()
        );
    }

    #[test]
    fn igd_is_mean_nearest_distance() {
        let reference = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        let approx = vec![vec![0.0, 1.0]];
        assert_relative_eq!(igd(&approx, &reference).unwrap(), 2f64.sqrt() / 2.0);
        assert_relative_eq!(igd(&reference, &reference).unwrap(), 0.0);
    }
}
