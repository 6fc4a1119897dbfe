//! The built binary starts on its own: with an empty environment (no `LD_LIBRARY_PATH`, no
//! `LIBTORCH`), as a user runs it. Built with `tch` it links libtorch, which it must find
//! through the rpath its build script embeds.

use std::process::Command;

/// Runs the built `dynas` with an empty environment; panics with its output unless it exits 0.
fn starts_alone(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dynas"))
        .args(args)
        .env_clear()
        .output()
        .expect("spawn dynas");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "`dynas {}` with an empty environment: {}\nstdout: {stdout}\nstderr: {stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

#[test]
fn the_binary_starts_with_an_empty_environment() {
    assert!(starts_alone(&["--help"]).contains("Usage"));
}

#[cfg(feature = "tch")]
#[test]
fn the_tch_binary_finds_libtorch_without_ld_library_path() {
    // Every libtorch command is there, and runs far enough to print its own help.
    for command in ["hadas", "gos", "serve"] {
        assert!(
            starts_alone(&[command, "--help"]).contains("Usage"),
            "{command}"
        );
    }
}
