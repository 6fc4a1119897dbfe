//! The crates meant for crates.io can be published: `dynas-testkit` among them (the README
//! recommends its `check_cost_model`), each with complete metadata and no path-only
//! dependency (a path without a version is refused by `cargo publish`).

use std::path::{Path, PathBuf};

use toml::Table;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manifest(path: &Path) -> Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn table<'a>(t: &'a Table, key: &str) -> Option<&'a Table> {
    t.get(key).and_then(|v| v.as_table())
}

#[test]
fn the_testkit_is_published() {
    let own = manifest(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    let package = table(&own, "package").expect("[package]");
    assert_ne!(
        package.get("publish").and_then(|v| v.as_bool()),
        Some(false),
        "dynas-testkit must be publishable"
    );
}

#[test]
fn published_crates_have_metadata_and_versioned_dependencies() {
    let root = workspace_root();
    let workspace = manifest(&root.join("Cargo.toml"));
    let shared = table(&workspace, "workspace").expect("[workspace]");
    let inherited = table(shared, "package").expect("[workspace.package]");
    let deps = table(shared, "dependencies").expect("[workspace.dependencies]");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let dir = entry.expect("entry").path();
        let path = dir.join("Cargo.toml");
        if !path.is_file() {
            continue;
        }
        let crate_manifest = manifest(&path);
        let package = table(&crate_manifest, "package").expect("[package]");
        let name = package["name"].as_str().expect("name").to_string();
        if package.get("publish").and_then(|v| v.as_bool()) == Some(false) {
            continue;
        }
        checked += 1;
        // What crates.io requires, and a repository to point back at.
        let fields: &[&str] = &["description", "license", "repository"];
        for &field in fields {
            let set = match package.get(field) {
                Some(v) => v.as_table().is_none() || inherited.contains_key(field),
                None => false,
            };
            assert!(set, "{name}: `package.{field}` is missing");
        }
        if let Some(readme) = package.get("readme").and_then(|v| v.as_str()) {
            assert!(
                dir.join(readme).is_file(),
                "{name}: readme `{readme}` not found"
            );
        }
        // Dependencies that ship with the package (dev-dependencies are stripped).
        for section in ["dependencies", "build-dependencies"] {
            let Some(list) = table(&crate_manifest, section) else {
                continue;
            };
            for (dep, spec) in list {
                let Some(spec) = spec.as_table() else {
                    continue; // a plain version string
                };
                let from_workspace = spec.get("workspace").and_then(|v| v.as_bool()) == Some(true);
                let spec = if from_workspace {
                    match deps.get(dep).and_then(|v| v.as_table()) {
                        Some(s) => s,
                        None => continue, // a version string in the workspace
                    }
                } else {
                    spec
                };
                assert!(
                    !spec.contains_key("path") || spec.contains_key("version"),
                    "{name}: {section} `{dep}` is a path without a version"
                );
            }
        }
    }
    assert!(checked > 5, "only {checked} publishable crates found");
}
