//! The README's list of supported commands matches the command table, so it cannot drift.

use std::collections::BTreeSet;

#[test]
fn readme_lists_exactly_the_supported_commands() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Supported commands").expect("a Supported commands section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let listed: BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| s.split_whitespace().next())
        .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase()))
        .map(str::to_lowercase)
        .collect();
    let table: BTreeSet<String> = raftis::cmd::COMMANDS.iter().map(|c| c.name.to_string()).collect();
    let missing: Vec<_> = table.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&table).collect();
    assert!(missing.is_empty() && extra.is_empty(), "README misses {missing:?}; lists unknown {extra:?}");
}
