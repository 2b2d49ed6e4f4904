//! The README's axum snippet is `examples/readme.rs` (which the test
//! command compiles), word for word.

#[test]
fn the_readme_shows_the_compiled_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/readme.rs")).unwrap();
    let block = format!("```rust,ignore\n{example}```\n");
    assert!(
        readme.contains(&block),
        "README.md must show tower/examples/readme.rs in a ```rust,ignore block, as it is"
    );
}
