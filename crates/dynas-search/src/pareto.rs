//! Pareto utilities on objective vectors in **minimisation form**: dominance, fast
//! non-dominated sorting, crowding distance exactly as pymoo computes it, exact hypervolume and
//! IGD, and Pareto fronts exported to JSON, CSV and SVG.

use std::path::Path;

use dynas_space::Genotype;
use plotters::prelude::{
    ChartBuilder, Circle, Color, IntoDrawingArea, LineSeries, RGBColor, SVGBackend, WHITE,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::problem::{Evaluation, Objective};

/// Relation of `a` to `b` (pymoo's `Dominator.get_relation`): `1` if `a` dominates `b`, `-1`
/// if `b` dominates `a`, `0` otherwise.
pub fn dominance(a: &[f64], b: &[f64]) -> i8 {
    let mut a_better = false;
    let mut b_better = false;
    for (x, y) in a.iter().zip(b) {
        if x < y {
            a_better = true;
        } else if y < x {
            b_better = true;
        }
        if a_better && b_better {
            return 0;
        }
    }
    match (a_better, b_better) {
        (true, false) => 1,
        (false, true) => -1,
        _ => 0,
    }
}

/// Whether `a` dominates `b` (no worse everywhere, better somewhere).
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    dominance(a, b) == 1
}

/// Deb's fast non-dominated sort: the fronts (indices into `points`), best first.
///
/// Duplicated points land in the same front, as in pymoo.
pub fn fast_non_dominated_sort(points: &[Vec<f64>]) -> Vec<Vec<usize>> {
    let n = points.len();
    let mut dominated_by_me: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut n_dominating_me = vec![0usize; n];
    for i in 0..n {
        for j in (i + 1)..n {
            match dominance(&points[i], &points[j]) {
                1 => {
                    dominated_by_me[i].push(j);
                    n_dominating_me[j] += 1;
                }
                -1 => {
                    dominated_by_me[j].push(i);
                    n_dominating_me[i] += 1;
                }
                _ => {}
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| n_dominating_me[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominated_by_me[i] {
                n_dominating_me[j] -= 1;
                if n_dominating_me[j] == 0 {
                    next.push(j);
                }
            }
        }
        fronts.push(current);
        current = next;
    }
    fronts
}

/// The rank (front number, 0 best) of every point.
pub fn ranks(points: &[Vec<f64>]) -> Vec<usize> {
    let mut rank = vec![0; points.len()];
    for (k, front) in fast_non_dominated_sort(points).iter().enumerate() {
        for &i in front {
            rank[i] = k;
        }
    }
    rank
}

/// Indices of the non-dominated points, ascending (duplicates of a non-dominated point are
/// all kept). Uses an `O(n log n)` sweep in 2-D and an `O(n log n + n f)` lexicographic sweep
/// (front size `f`) in more dimensions, so it handles whole benchmark and configuration tables.
pub fn non_dominated(points: &[Vec<f64>]) -> Vec<usize> {
    if points.first().is_some_and(|p| p.len() == 2) {
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| {
            points[a][0]
                .total_cmp(&points[b][0])
                .then(points[a][1].total_cmp(&points[b][1]))
        });
        let mut keep = Vec::new();
        let mut best_y = f64::INFINITY;
        let mut last: Option<&[f64]> = None;
        for i in order {
            let p = &points[i];
            // Equal points are mutually non-dominated: keep duplicates of a kept point.
            if last.is_some_and(|l| l == p.as_slice()) || p[1] < best_y {
                keep.push(i);
                best_y = best_y.min(p[1]);
                last = Some(p);
            }
        }
        keep.sort_unstable();
        keep
    } else {
        // Lexicographic sweep: a point can only be dominated by a point before it in
        // lexicographic order, and (dominance being transitive) by a kept one, so each point is
        // checked against the front so far: O(n log n + n f) time, O(n) memory.
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| {
            points[a]
                .iter()
                .zip(&points[b])
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut keep: Vec<usize> = Vec::new();
        for i in order {
            if !keep.iter().any(|&k| dominates(&points[k], &points[i])) {
                keep.push(i);
            }
        }
        keep.sort_unstable();
        keep
    }
}

/// Crowding distance of the points of one front, exactly as pymoo's
/// `calc_crowding_distance(F, filter_out_duplicates=True)`: fronts of at most two points get
/// infinity; duplicates (of an earlier point) get 0; extreme points of each objective get
/// infinity; gaps are normalised by the objective's range (objectives with zero range add 0)
/// and the sum is divided by the number of objectives.
pub fn crowding_distance(front: &[Vec<f64>]) -> Vec<f64> {
    crowding_distance_with(front, true)
}

/// [`crowding_distance`] with pymoo's `filter_out_duplicates` switch (pymoo 0.6's `"cd"`
/// survival passes `false`: duplicates then get ordinary, usually small, distances).
pub fn crowding_distance_with(front: &[Vec<f64>], filter_duplicates: bool) -> Vec<f64> {
    let n = front.len();
    if n <= 2 {
        return vec![f64::INFINITY; n];
    }
    let m = front[0].len();
    // pymoo's find_duplicates with epsilon 1e-32: a point equal to an earlier one is a duplicate.
    let unique: Vec<usize> = (0..n)
        .filter(|&i| {
            !filter_duplicates
                || !(0..i).any(|j| {
                    front[i]
                        .iter()
                        .zip(&front[j])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt()
                        <= 1e-32
                })
        })
        .collect();
    let u = unique.len();
    let mut cd_unique = vec![0.0; u];
    #[allow(clippy::needless_range_loop)]
    for obj in 0..m {
        let mut order: Vec<usize> = (0..u).collect();
        // Stable sort = numpy's mergesort argsort.
        order.sort_by(|&a, &b| front[unique[a]][obj].total_cmp(&front[unique[b]][obj]));
        let sorted: Vec<f64> = order.iter().map(|&k| front[unique[k]][obj]).collect();
        let norm = sorted[u - 1] - sorted[0];
        for (pos, &k) in order.iter().enumerate() {
            let to_last = if pos == 0 {
                f64::INFINITY
            } else {
                sorted[pos] - sorted[pos - 1]
            };
            let to_next = if pos + 1 == u {
                f64::INFINITY
            } else {
                sorted[pos + 1] - sorted[pos]
            };
            // Zero range: numpy divides by NaN and replaces the NaN with 0.
            let scaled = |d: f64| if norm == 0.0 { 0.0 } else { d / norm };
            cd_unique[k] += scaled(to_last) + scaled(to_next);
        }
    }
    let mut cd = vec![0.0; n];
    for (k, &i) in unique.iter().enumerate() {
        cd[i] = cd_unique[k] / m as f64;
    }
    cd
}

/// Exact hypervolume dominated by `points` (minimisation) and bounded by `reference`.
/// Points that do not strictly dominate the reference point contribute nothing.
/// `O(n log n)` in 2-D; exact dimension sweep (slicing) in higher dimensions.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> Result<f64> {
    let d = reference.len();
    if d == 0 {
        return Err(SearchError::invalid(
            "reference point",
            "needs at least one objective",
        ));
    }
    if let Some(p) = points.iter().find(|p| p.len() != d) {
        return Err(SearchError::invalid(
            "points",
            format!(
                "a point has {} objectives, the reference point {d}",
                p.len()
            ),
        ));
    }
    if reference.iter().any(|r| !r.is_finite()) {
        return Err(SearchError::invalid("reference point", "must be finite"));
    }
    let inside: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x.is_finite() && x < r))
        .cloned()
        .collect();
    Ok(hv_rec(inside, reference))
}

fn hv_rec(mut pts: Vec<Vec<f64>>, reference: &[f64]) -> f64 {
    let d = reference.len();
    if pts.is_empty() {
        return 0.0;
    }
    match d {
        1 => pts.iter().map(|p| reference[0] - p[0]).fold(0.0, f64::max),
        2 => {
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
            let mut volume = 0.0;
            let mut best_y = reference[1];
            for p in &pts {
                if p[1] < best_y {
                    volume += (reference[0] - p[0]) * (best_y - p[1]);
                    best_y = p[1];
                }
            }
            volume
        }
        _ => {
            // Slice along the last objective: between consecutive values the dominated
            // region's cross-section is the (d-1)-volume of the points below.
            let last = d - 1;
            pts.sort_by(|a, b| a[last].total_cmp(&b[last]));
            let mut volume = 0.0;
            for k in 0..pts.len() {
                let upper = if k + 1 < pts.len() {
                    pts[k + 1][last]
                } else {
                    reference[last]
                };
                let height = upper - pts[k][last];
                if height <= 0.0 {
                    continue;
                }
                let slice: Vec<Vec<f64>> = pts[..=k].iter().map(|p| p[..last].to_vec()).collect();
                let slice = if slice.len() > 1 && slice[0].len() == 2 {
                    let keep = non_dominated(&slice);
                    keep.into_iter().map(|i| slice[i].clone()).collect()
                } else {
                    slice
                };
                volume += height * hv_rec(slice, &reference[..last]);
            }
            volume
        }
    }
}

/// Inverted generational distance: mean over `reference_front` of the Euclidean distance to
/// the nearest point of `approximation`.
pub fn igd(approximation: &[Vec<f64>], reference_front: &[Vec<f64>]) -> Result<f64> {
    if approximation.is_empty() || reference_front.is_empty() {
        return Err(SearchError::invalid(
            "igd",
            "both the approximation and the reference front must be non-empty",
        ));
    }
    let total: f64 = reference_front
        .iter()
        .map(|r| {
            approximation
                .iter()
                .map(|a| {
                    a.iter()
                        .zip(r)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    Ok(total / reference_front.len() as f64)
}

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

    /// Writes the front as pretty JSON.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SearchError::parse(path, e.to_string()))?;
        std::fs::write(path, text).map_err(|e| SearchError::io(path, e))
    }

    /// Writes the front as CSV: `genotype,label,<objective names...>`.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut writer = csv::Writer::from_path(path).map_err(|e| csv_error(path, e))?;
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
        writer.flush().map_err(|e| SearchError::io(path, e))
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
        std::fs::write(path, self.to_svg(reference)?).map_err(|e| SearchError::io(path, e))
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
