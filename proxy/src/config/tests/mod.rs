//! Config parsing: typed values and defaults (`valid`), and every error
//! kind with its line:column and key (`errors`).

mod checks;
mod errors;
mod plugins;
mod reload;
mod valid;

use std::net::SocketAddr;
use std::time::Duration;

pub(super) use super::*;

pub(super) const MINIMAL: &str = r#"
[[listener]]
bind = "127.0.0.1:8000"

[[pool]]
[[pool.server]]
addr = "127.0.0.1:5000"
"#;

pub(super) fn errors(src: &str) -> Vec<ConfigError> {
    match parse(src, "lb.toml") {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => {
            assert!(!e.errors.is_empty());
            e.errors
        }
    }
}

/// The only error; panics (showing all) when there are more.
pub(super) fn one_error(src: &str) -> ConfigError {
    let mut errs = errors(src);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.remove(0)
}

/// 1-based line:column of the first occurrence of `needle` in `src`.
pub(super) fn pos(src: &str, needle: &str) -> (usize, usize) {
    let at = src.find(needle).unwrap_or_else(|| panic!("{needle:?} not in source"));
    let line = src[..at].matches('\n').count() + 1;
    let col = at - src[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

pub(super) fn assert_at(e: &ConfigError, src: &str, needle: &str, key: &str) {
    assert_eq!((e.line, e.column), pos(src, needle), "{e}");
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.origin, "lb.toml");
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
