//! Shared helpers of the property tests.

use proptest::test_runner::Config;

/// Proptest settings: `PROPTEST_CASES` from the environment (the valgrind
/// run lowers it), else at least 256 cases per property.
pub fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
