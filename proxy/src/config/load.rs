//! Entry points: TOML text or a file → [`Config`], or every problem found,
//! each with `origin:line:column: key: message`.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::raw;
use super::types::Config;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or whatever `parse` was given as origin).
    pub origin: String,
    /// 1-based; 0 when the problem has no single location (a missing
    /// `[[listener]]`, an unreadable file).
    pub line: usize,
    /// 1-based, in characters; 0 together with `line`.
    pub column: usize,
    /// Dotted path with array indices, e.g. `pool[0].server[1].weight`;
    /// empty for TOML syntax errors outside any key and for IO errors.
    pub key: String,
    pub message: String,
}

/// Every problem found in a config; `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.errors))]
pub struct ConfigErrors {
    /// In source order; never empty.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    /// `lb.toml:14:10: pool[0].server[1].weight: weight 300 is outside 0–256`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

fn lines(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Parses and validates config text. `origin` names it in errors (the file
/// name), and a relative `plugins.dir` is resolved against its directory.
/// Host names in addresses are resolved here, so this may block on DNS.
pub fn parse(src: &str, origin: &str) -> Result<Config, ConfigErrors> {
    parse_in(src, origin, Path::new(origin).parent().unwrap_or(Path::new("")))
}

/// [`parse`] with relative paths resolved against `config_dir`.
fn parse_in(src: &str, origin: &str, config_dir: &Path) -> Result<Config, ConfigErrors> {
    let raw: raw::Config = match toml::from_str(src) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(ConfigErrors { errors: toml_errors(src, origin, &e) });
        }
    };
    Config::from_raw(raw, config_dir).map_err(|issues| {
        let mut errors: Vec<ConfigError> =
            issues.into_iter().map(|i| located(src, origin, i.span, i.key, i.message)).collect();
        errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors { errors }
    })
}

/// Reads and parses a config file; errors carry the path as origin.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => parse_in(&src, &origin, path.parent().unwrap_or(Path::new(""))),
        Err(e) => Err(ConfigErrors {
            errors: vec![located("", &origin, None, String::new(), format!("cannot read config: {e}"))],
        }),
    }
}

/// The deserializer stops at its first error; for syntax errors, the
/// recovering parser can report all of them, so ask it first. Only the
/// first syntax error of each line is kept: the rest of a broken line
/// mostly yields follow-on noise.
fn toml_errors(src: &str, origin: &str, first: &toml::de::Error) -> Vec<ConfigError> {
    let (doc, syntax) = DeTable::parse_recoverable(src);
    let errors: Vec<&toml::de::Error> = if syntax.is_empty() { vec![first] } else { syntax.iter().collect() };
    let mut out: Vec<ConfigError> = errors
        .into_iter()
        .map(|e| {
            let key = e.span().map(|s| key_at(doc.get_ref(), s.start)).unwrap_or_default();
            let mut message = friendlier(e.message());
            // The parser says "duplicate key" without saying which.
            if let (Some(span), "duplicate key") = (e.span(), message.as_str())
                && let Some(name) = src.get(span).filter(|n| !n.is_empty())
            {
                message = format!("duplicate key `{name}`");
            }
            located(src, origin, e.span(), key, message)
        })
        .collect();
    out.sort_by_key(|e| (e.line, e.column));
    out.dedup_by_key(|e| e.line);
    out
}

/// serde names Rust types; users wrote TOML.
fn friendlier(msg: &str) -> String {
    msg.replace("expected i64", "expected an integer")
        .replace("expected a boolean", "expected true or false")
        .replace("expected a sequence", "expected an array")
}

fn located(src: &str, origin: &str, span: Option<Range<usize>>, key: String, message: String) -> ConfigError {
    let (line, column) = span.map_or((0, 0), |s| line_col(src, s.start));
    ConfigError { origin: origin.to_owned(), line, column, key, message }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// The dotted path (`pool[0].sticky.cookie`) of the deepest key whose name
/// or value covers `offset`, so deserializer errors use the same key style
/// as validation errors.
fn key_at(doc: &DeTable<'_>, offset: usize) -> String {
    let mut best = String::new();
    walk_table(doc, offset, &mut String::new(), &mut best);
    best
}

fn walk_table(t: &DeTable<'_>, offset: usize, path: &mut String, best: &mut String) {
    for (k, v) in t.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(k.get_ref());
        if covers(&k.span(), offset) || covers(&v.span(), offset) {
            best.clone_from(path);
        }
        walk_value(v.get_ref(), offset, path, best);
        path.truncate(len);
    }
}

fn walk_value(v: &DeValue<'_>, offset: usize, path: &mut String, best: &mut String) {
    match v {
        DeValue::Table(t) => walk_table(t, offset, path, best),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if covers(&item.span(), offset) {
                    best.clone_from(path);
                }
                walk_value(item.get_ref(), offset, path, best);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// An empty span (errors at end of input) covers its own start.
fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}
