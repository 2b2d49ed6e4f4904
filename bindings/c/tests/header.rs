//! `include/ringfence.h` is exactly what the pinned cbindgen generates from
//! this crate now, and its version macros are the workspace's version.
//!
//! After changing the C API, regenerate the header with
//! `RINGFENCE_BLESS=1 cargo test -p ringfence-c --test header` and commit it.

use std::ffi::CStr;
use std::path::PathBuf;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../../include/ringfence.h")
}

fn generate() -> String {
    let config = cbindgen::Config::from_file(crate_dir().join("cbindgen.toml"))
        .expect("bindings/c/cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir())
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let generated = generate();
    let path = header_path();
    if std::env::var_os("RINGFENCE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/ringfence.h");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/ringfence.h is stale: it differs from what cbindgen generates now, from line {} \
             (committed: {:?}, generated: {:?}). Regenerate it with \
             `RINGFENCE_BLESS=1 cargo test -p ringfence-c --test header` and commit it.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// The workspace's version, from the root Cargo.toml.
fn cargo_version() -> String {
    let text = std::fs::read_to_string(crate_dir().join("../../Cargo.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc["workspace"]["package"]["version"]
        .as_str()
        .expect("[workspace.package] version")
        .to_string()
}

#[test]
fn version_macros_match_cargo_toml() {
    let version = cargo_version();
    let parts: Vec<u32> = version
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().unwrap())
        .collect();
    // (While blessing, the other test is rewriting the file: check what it writes.)
    let header = if std::env::var_os("RINGFENCE_BLESS").is_some() {
        generate()
    } else {
        std::fs::read_to_string(header_path()).expect("include/ringfence.h")
    };
    let define = |name: &str| -> String {
        let prefix = format!("#define {name} ");
        header
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("the header defines {name}"))
            .trim()
            .to_string()
    };
    assert_eq!(define("RF_VERSION_MAJOR"), parts[0].to_string());
    assert_eq!(define("RF_VERSION_MINOR"), parts[1].to_string());
    assert_eq!(define("RF_VERSION_PATCH"), parts[2].to_string());
    // RF_VERSION is built from those three in the header (the C tests
    // compare it with rf_version()).
    assert!(
        header.contains("#define RF_VERSION "),
        "the header defines RF_VERSION"
    );
    // The constants behind them, and the library's run-time answer.
    assert_eq!(
        [
            ringfence_c::RF_VERSION_MAJOR,
            ringfence_c::RF_VERSION_MINOR,
            ringfence_c::RF_VERSION_PATCH
        ],
        parts[..]
    );
    // SAFETY: rf_version returns a static NUL-terminated string.
    let linked = unsafe { CStr::from_ptr(ringfence_c::rf_version()) };
    assert_eq!(linked.to_str().unwrap(), version);
}
