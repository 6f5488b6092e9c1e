//! The committed C header lists exactly the functions `src/ffi/` exports. (The full check —
//! regenerating with cbindgen and diffing — is `make header-check`, run by `make test-c`;
//! this one needs no cbindgen, so it runs with every `cargo test`.)

use std::collections::BTreeSet;
use std::fs;

fn exported_functions() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir("src/ffi").unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        for part in text.split("pub extern \"C\" fn ").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

#[test]
fn header_declares_every_exported_function() {
    let header = fs::read_to_string("bindings/litepool.h").expect("bindings/litepool.h");
    let exported = exported_functions();
    assert!(exported.len() > 30, "{exported:?}");
    let missing: Vec<_> = exported
        .iter()
        .filter(|name| !header.contains(&format!(" {name}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "bindings/litepool.h is stale: run make header (missing {missing:?})"
    );
    // And nothing the code no longer exports.
    let declared: BTreeSet<String> = header
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' ') && l.contains('('))
        .filter_map(|l| {
            let before = &l[..l.find('(')?];
            let name = before.rsplit([' ', '*']).next()?;
            name.starts_with("litepool_").then(|| name.to_string())
        })
        .collect();
    let extra: Vec<_> = declared.difference(&exported).collect();
    assert!(
        extra.is_empty(),
        "bindings/litepool.h is stale: run make header (declares {extra:?})"
    );
    assert_eq!(declared, exported);
}
