//! Exit data files at their limits (issue 32): a duplicated column, a device file.

use dynas_exits::HadasExitData;

#[test]
fn a_duplicated_column_or_a_device_file_is_refused() {
    let text = "Exit,TOP1_Acc,TOP5_Acc,Loss,Loss\n1,50,80,1.0,2.0\n";
    let err = HadasExitData::parse(text, "exits.csv")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Loss") && err.contains("twice"), "{err}");
    let started = std::time::Instant::now();
    let err = HadasExitData::from_csv("/dev/zero")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/dev/zero"), "{err}");
    assert!(started.elapsed().as_secs() < 5);
}
