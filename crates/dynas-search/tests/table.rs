//! Loading tables: robust parsing, typed errors naming file, line and column.

mod common;

use dynas_search::table::{nb201_arch_str, parse_nb201_arch_str};
use dynas_search::{
    Budget, Executor, GeneColumns, Objective, Problem, RandomSearch, SearchError, TableProblem,
};
use dynas_space::Genotype;

fn objectives() -> Vec<Objective> {
    vec![Objective::minimize("lat"), Objective::maximize("acc")]
}

#[test]
fn arch_strings_round_trip_and_match_the_op_columns() {
    let problem = common::nb201();
    let first = Genotype::new(vec![4, 2, 1, 2, 1, 1]);
    let label = problem.label(&first).unwrap();
    assert_eq!(parse_nb201_arch_str(label).unwrap(), vec![4, 2, 1, 2, 1, 1]);
    assert_eq!(nb201_arch_str(first.genes()).as_deref(), Some(label));
    assert!(parse_nb201_arch_str("|conv~0|+|x~0|").is_err());
}

#[test]
fn arch_str_only_tables_and_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "arch_str,lat,acc\n\
         |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|,5.0,70\n\
         |none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0,\n\
         |skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|,2.0,10\n",
    )
    .unwrap();
    let problem = TableProblem::from_csv(&path, objectives()).unwrap();
    assert_eq!(problem.len(), 3);
    assert_eq!(problem.space().dimensions().len(), 6);
    let missing = problem.evaluate(&Genotype::new(vec![0; 6])).unwrap();
    assert!(!missing.is_feasible());
    let absent = problem.evaluate(&Genotype::new(vec![4; 6])).unwrap();
    assert!(!absent.is_feasible());
    assert_eq!(problem.true_front().len(), 2);
    // A search over it never reports infeasible rows on the front.
    let r = Executor::new(
        &problem,
        RandomSearch::new(5).unwrap(),
        Budget::evaluations(50).unwrap(),
    )
    .run()
    .unwrap();
    assert!(
        r.front
            .points
            .iter()
            .all(|p| p.values.iter().all(|v| v.is_finite()))
    );
}

#[test]
fn bad_cells_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "op0,op1,lat,acc\n0,1,2.0,50\n1,1,fast,60\n").unwrap();
    let err = TableProblem::from_csv(&path, objectives()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, SearchError::Parse { line: Some(3), column: Some(c), .. } if c == "lat"),
        "{text}"
    );
    assert!(text.contains("bad.csv") && text.contains("fast"), "{text}");

    std::fs::write(&path, "op0,op1,lat,acc\n0,x,2.0,50\n").unwrap();
    let err = TableProblem::from_csv(&path, objectives()).unwrap_err();
    assert!(err.to_string().contains("op1"), "{err}");

    let err = TableProblem::from_csv(
        &path,
        vec![Objective::minimize("latency_that_is_not_there")],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("latency_that_is_not_there"),
        "{err}"
    );

    std::fs::write(&path, "op0,op1,lat,acc\n0,1,2.0,50\n0,1,3.0,50\n").unwrap();
    let err = TableProblem::from_csv(&path, objectives()).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");

    let err =
        TableProblem::from_csv_with(dir.path().join("nope.csv"), objectives(), GeneColumns::Auto)
            .unwrap_err();
    assert!(matches!(err, SearchError::Io { .. }), "{err}");
}
