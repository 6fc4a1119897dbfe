//! Load traces: the share of the device a co-running application takes, window by window.
//!
//! # File format
//!
//! UTF-8 CSV. Blank lines and lines starting with `#` are ignored. The first other line is the
//! header `time_s,co_runner_load`; every following line is one window: its start time in
//! seconds (strictly increasing) and the co-runner's share of the device in `[0, 1)`
//! (`0` idle, `0.5` half the device taken). Errors name the file and the line.
//!
//! ```text
//! # step: idle, then a co-runner takes 60 % of the GPU
//! time_s,co_runner_load
//! 0.0,0.0
//! 0.5,0.6
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DvfsError, Result};

/// One window of a trace file.
#[derive(Deserialize)]
struct TraceRow {
    time_s: f64,
    co_runner_load: f64,
}

impl TraceRow {
    const HEADER: [&'static str; 2] = ["time_s", "co_runner_load"];
}

/// A [`DvfsError::Parse`] from a csv error, naming the line and, for a bad value, the field.
fn csv_error(origin: &Path, e: &csv::Error, record: Option<&csv::StringRecord>) -> DvfsError {
    let line = e.position().map(|p| p.line() as usize);
    let reason = match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let i = err.field().unwrap_or(0) as usize;
            let field = TraceRow::HEADER.get(i).unwrap_or(&"?");
            let value = record.and_then(|r| r.get(i)).unwrap_or("");
            format!("field `{field}`: `{value}`: {}", err.kind())
        }
        _ => e.to_string(),
    };
    DvfsError::parse(origin, line, reason)
}

/// A validated, non-empty load trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTrace")]
pub struct LoadTrace {
    name: String,
    time_s: Vec<f64>,
    load: Vec<f64>,
}

/// The unchecked serde form of [`LoadTrace`].
#[derive(Deserialize)]
struct RawTrace {
    name: String,
    time_s: Vec<f64>,
    load: Vec<f64>,
}

impl TryFrom<RawTrace> for LoadTrace {
    type Error = DvfsError;

    fn try_from(raw: RawTrace) -> Result<Self> {
        Self::new(raw.name, raw.time_s, raw.load)
    }
}

/// Index of `load`'s bin among `bins` equal bins of `[0, 1]` (a load outside is clamped; the
/// last bin takes 1). Shared by everything that keeps figures per load level.
pub(crate) fn load_bin(load: f64, bins: usize) -> usize {
    ((load.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1)
}

/// The shipped traces, by name: `steady`, `step`, `periodic`, `bursty`.
pub const SHIPPED_TRACES: [(&str, &str); 4] = [
    ("steady", include_str!("../traces/steady.csv")),
    ("step", include_str!("../traces/step.csv")),
    ("periodic", include_str!("../traces/periodic.csv")),
    ("bursty", include_str!("../traces/bursty.csv")),
];

impl LoadTrace {
    /// A trace from its windows' start times (strictly increasing, finite) and loads
    /// (in `[0, 1)`).
    pub fn new(name: impl Into<String>, time_s: Vec<f64>, load: Vec<f64>) -> Result<Self> {
        let name = name.into();
        let origin = PathBuf::from(format!("<trace {name}>"));
        if time_s.len() != load.len() {
            return Err(DvfsError::invalid(
                "load",
                format!("{} times but {} loads", time_s.len(), load.len()),
            ));
        }
        if time_s.is_empty() {
            return Err(DvfsError::parse(origin, None, "the trace has no windows"));
        }
        for i in 0..time_s.len() {
            Self::check_row(
                &origin,
                None,
                time_s[i],
                load[i],
                i.checked_sub(1).map(|j| time_s[j]),
            )?;
            Self::check_span(&origin, None, time_s[0], time_s[i])?;
        }
        Ok(Self { name, time_s, load })
    }

    fn check_row(
        origin: &Path,
        line: Option<usize>,
        t: f64,
        l: f64,
        prev: Option<f64>,
    ) -> Result<()> {
        if !t.is_finite() {
            return Err(DvfsError::parse(
                origin,
                line,
                "field `time_s` is not finite",
            ));
        }
        if prev.is_some_and(|p| t <= p) {
            return Err(DvfsError::parse(
                origin,
                line,
                format!("field `time_s` ({t}) must be strictly increasing"),
            ));
        }
        if !(0.0..1.0).contains(&l) {
            return Err(DvfsError::parse(
                origin,
                line,
                format!("field `co_runner_load` ({l}) must lie in [0, 1)"),
            ));
        }
        Ok(())
    }

    /// Refuses a window that starts too late after the first one for its time to be a
    /// [`std::time::Duration`] (the trace is played in real time): twice the span, which bounds
    /// the end of the last window, must be one.
    fn check_span(origin: &Path, line: Option<usize>, t0: f64, t: f64) -> Result<()> {
        let span = t - t0;
        if std::time::Duration::try_from_secs_f64(2.0 * span).is_err() {
            return Err(DvfsError::parse(
                origin,
                line,
                format!(
                    "field `time_s` ({t}) lies {span} s after the first window: too long a trace \
                     to play (times are seconds)"
                ),
            ));
        }
        Ok(())
    }

    /// Reads a trace file (format in the module documentation); the name is the file stem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = dynas_space::files::read_input_text(path)
            .map_err(|e| DvfsError::io(path, "read", e))?;
        let name = path
            .file_stem()
            .map_or_else(|| "trace".to_string(), |s| s.to_string_lossy().into_owned());
        Self::parse(&name, &text, path)
    }

    /// One of the shipped traces (`steady`, `step`, `periodic`, `bursty`).
    pub fn shipped(name: &str) -> Result<Self> {
        let (n, text) = SHIPPED_TRACES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| {
                DvfsError::invalid(
                    "trace",
                    format!("no shipped trace `{name}` (steady, step, periodic, bursty)"),
                )
            })?;
        Self::parse(n, text, Path::new(&format!("traces/{n}.csv")))
    }

    /// Parses trace text; `origin` names the source in errors.
    pub fn parse(name: &str, text: &str, origin: &Path) -> Result<Self> {
        // The csv crate splits and unquotes; comments, blank lines and the exact header are ours.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut header: Option<csv::StringRecord> = None;
        let (mut time_s, mut load) = (Vec::new(), Vec::new());
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(origin, &e, None))?;
            let line_no = record.position().map(|p| p.line() as usize);
            // An indented `#` line is a comment too; a line of blanks is blank.
            if record.iter().all(str::is_empty) || record.get(0).is_some_and(|f| f.starts_with('#'))
            {
                continue;
            }
            let Some(columns) = &header else {
                if record.iter().ne(TraceRow::HEADER) {
                    return Err(DvfsError::parse(
                        origin,
                        line_no,
                        format!(
                            "expected the header `time_s,co_runner_load`, found `{}`",
                            record.iter().collect::<Vec<_>>().join(",")
                        ),
                    ));
                }
                header = Some(record);
                continue;
            };
            if record.len() != 2 {
                return Err(DvfsError::parse(
                    origin,
                    line_no,
                    format!("expected 2 fields, found {}", record.len()),
                ));
            }
            let row: TraceRow = record
                .deserialize(Some(columns))
                .map_err(|e| csv_error(origin, &e, Some(&record)))?;
            Self::check_row(
                origin,
                line_no,
                row.time_s,
                row.co_runner_load,
                time_s.last().copied(),
            )?;
            Self::check_span(
                origin,
                line_no,
                time_s.first().copied().unwrap_or(row.time_s),
                row.time_s,
            )?;
            time_s.push(row.time_s);
            load.push(row.co_runner_load);
        }
        let header_seen = header.is_some();
        if time_s.is_empty() {
            return Err(DvfsError::parse(
                origin,
                None,
                if header_seen {
                    "the trace has no windows"
                } else {
                    "the trace is empty (no header)"
                },
            ));
        }
        Ok(Self {
            name: name.to_string(),
            time_s,
            load,
        })
    }

    /// Writes the trace in the file format.
    pub fn to_csv_string(&self) -> String {
        let mut s = format!("# {}\ntime_s,co_runner_load\n", self.name);
        for (t, l) in self.time_s.iter().zip(&self.load) {
            s.push_str(&format!("{t},{l}\n"));
        }
        s
    }

    /// Name of the trace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of windows (never 0).
    pub fn len(&self) -> usize {
        self.load.len()
    }

    /// Always `false`: a trace is never empty.
    pub fn is_empty(&self) -> bool {
        self.load.is_empty()
    }

    /// Start time of each window, s.
    pub fn times_s(&self) -> &[f64] {
        &self.time_s
    }

    /// Co-runner load of each window.
    pub fn loads(&self) -> &[f64] {
        &self.load
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn shipped_traces_parse_and_have_their_shapes() {
        for (name, _) in SHIPPED_TRACES {
            let t = LoadTrace::shipped(name).expect("shipped");
            assert_eq!(t.len(), 200, "{name}");
            assert!(t.loads().iter().all(|l| (0.0..1.0).contains(l)));
        }
        let step = LoadTrace::shipped("step").expect("step");
        assert_relative_eq!(step.loads()[0], 0.0);
        assert_relative_eq!(step.loads()[100], 0.55);
        let steady = LoadTrace::shipped("steady").expect("steady");
        assert!(steady.loads().iter().all(|&l| l == 0.2));
        assert!(LoadTrace::shipped("nope").is_err());
        // The shipped files on disk are the embedded ones.
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/traces/bursty.csv");
        assert_eq!(
            LoadTrace::from_file(file).expect("file").loads(),
            LoadTrace::shipped("bursty").expect("b").loads()
        );
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "# c\ntime_s,co_runner_load\n0.0,0.1\n0.1,1.5\n").expect("w");
        let e = LoadTrace::from_file(&p).expect_err("load 1.5").to_string();
        assert!(
            e.contains("t.csv") && e.contains("line 4") && e.contains("co_runner_load"),
            "{e}"
        );
        std::fs::write(&p, "time_s,co_runner_load\n0.0,x\n").expect("w");
        let e = LoadTrace::from_file(&p).expect_err("x").to_string();
        assert!(e.contains("line 2"), "{e}");
        std::fs::write(&p, "t,load\n0.0,0.1\n").expect("w");
        assert!(
            LoadTrace::from_file(&p)
                .expect_err("header")
                .to_string()
                .contains("header")
        );
        std::fs::write(&p, "time_s,co_runner_load\n0.2,0.1\n0.1,0.1\n").expect("w");
        assert!(
            LoadTrace::from_file(&p)
                .expect_err("order")
                .to_string()
                .contains("increasing")
        );
        std::fs::write(&p, "time_s,co_runner_load\n").expect("w");
        assert!(LoadTrace::from_file(&p).is_err());
        let t = LoadTrace::new("x", vec![0.0, 1.0], vec![0.1, 0.2]).expect("trace");
        let back = LoadTrace::parse("x", &t.to_csv_string(), Path::new("mem")).expect("parse");
        assert_eq!(back, t);
        let json = serde_json::to_string(&t).expect("serialise");
        assert_eq!(
            serde_json::from_str::<LoadTrace>(&json).expect("round trip"),
            t
        );
        let bad = r#"{"name": "x", "time_s": [0.0], "load": [2.0]}"#;
        assert!(serde_json::from_str::<LoadTrace>(bad).is_err());
    }
}
