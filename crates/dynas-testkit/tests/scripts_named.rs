//! Every `scripts/*.sh` the repository's configuration and documents name exists (the cargo
//! configuration once pointed at a `scripts/setup-libtorch.sh` that never did).

use std::path::Path;

#[test]
fn every_script_named_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![
        root.join(".cargo/config.toml"),
        root.join("README.md"),
        root.join(".ci/run"),
    ];
    for dir in ["docs", "scripts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("entry").path()));
    }
    let mut named = 0;
    for file in files.iter().filter(|f| f.is_file()) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (at, _) in text.match_indices("scripts/") {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/_-.".contains(c)))
                .unwrap_or(rest.len());
            let Some(script) = rest[..end].strip_suffix(".sh").map(|s| format!("{s}.sh")) else {
                continue;
            };
            named += 1;
            assert!(
                root.join(&script).is_file(),
                "{} names `{script}`, which does not exist",
                file.display()
            );
        }
    }
    assert!(named > 0, "no script named anywhere");
}
