//! A tiny reader for a pool's `plugin_config`, which `init` receives as
//! compact JSON (`"{}"` when the pool has none).
//!
//! Only what a plugin config needs: a flat object of strings, numbers, bools
//! and nulls. Nested objects and arrays are accepted and kept as raw JSON text
//! (see [`Config::raw`]) so a config with a table in it does not reject the
//! plugin. Numbers are kept as text and parsed when asked for, so a plugin
//! that never reads a float does not carry float parsing in its `.wasm`.

use core::fmt;

/// One value of a flat config object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A JSON string, escapes decoded.
    Str(String),
    /// A JSON number, as written (parsed on demand).
    Num(String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A nested object or array, as raw JSON text.
    Nested(String),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Num(_) => "a number",
            Value::Bool(_) => "a bool",
            Value::Null => "null",
            Value::Nested(_) => "an object or array",
        }
    }
}

/// A parsed `plugin_config`: keys in the order they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, Value)>,
}

/// Why a config was rejected; names the key where there is one. Converts into
/// `String`, so `?` works inside [`Plugin::info`](crate::Plugin::info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The text is not a JSON object (byte offset and what was expected).
    Syntax {
        /// Byte offset of the problem in the config text.
        at: usize,
        /// What the reader expected there.
        expected: &'static str,
    },
    /// A key holds a value of the wrong type or range.
    Type {
        /// The config key.
        key: String,
        /// What the plugin wanted, e.g. "an integer 0-100".
        expected: &'static str,
        /// What the config holds.
        found: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax { at, expected } => write!(f, "plugin_config: expected {expected} at byte {at}"),
            ConfigError::Type { key, expected, found } => {
                write!(f, "plugin_config.{key}: expected {expected}, found {found}")
            }
        }
    }
}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

impl Config {
    /// Parses a JSON object. Empty or all-whitespace text is an empty config.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut p = Parser { text, s: text.as_bytes(), i: 0 };
        p.ws();
        if p.i == p.s.len() {
            return Ok(Config::default());
        }
        let entries = p.object()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("end of input"));
        }
        Ok(Config { entries })
    }

    /// The value of `key` (the last one, if written twice).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Every key and value, in the order written.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A string value; absent or `null` → `None`.
    pub fn str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(other) => Err(type_err(key, "a string", other)),
        }
    }

    /// A string value, or `default` when absent.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> Result<&'a str, ConfigError> {
        Ok(self.str(key)?.unwrap_or(default))
    }

    /// A bool value; absent or `null` → `None`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_err(key, "a bool", other)),
        }
    }

    /// A bool value, or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self.bool(key)?.unwrap_or(default))
    }

    /// A non-negative integer (`10`, also `10.0`); absent or `null` → `None`.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Num(n)) => parse_u64(n).map(Some).ok_or_else(|| ConfigError::Type {
                key: key.into(),
                expected: "a non-negative integer",
                found: "another number",
            }),
            Some(other) => Err(type_err(key, "a non-negative integer", other)),
        }
    }

    /// A non-negative integer, or `default` when absent.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        Ok(self.u64(key)?.unwrap_or(default))
    }

    /// An integer within `min..=max`, or `default` when absent; `expected`
    /// names the range in the error (e.g. "an integer 0-100").
    pub fn u64_in(
        &self,
        key: &str,
        min: u64,
        max: u64,
        default: u64,
        expected: &'static str,
    ) -> Result<u64, ConfigError> {
        let v = self.u64(key).map_err(|e| match e {
            ConfigError::Type { key, found, .. } => ConfigError::Type { key, expected, found },
            e => e,
        })?;
        match v {
            None => Ok(default),
            Some(v) if (min..=max).contains(&v) => Ok(v),
            Some(_) => Err(ConfigError::Type { key: key.into(), expected, found: "a number out of range" }),
        }
    }

    /// Any number as `f64`; absent or `null` → `None`.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Num(n)) => n.parse().map(Some).map_err(|_| type_err(key, "a number", &Value::Null)),
            Some(other) => Err(type_err(key, "a number", other)),
        }
    }

    /// A nested object or array as raw JSON text; absent or `null` → `None`.
    pub fn raw(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Nested(s)) => Ok(Some(s)),
            Some(other) => Err(type_err(key, "an object or array", other)),
        }
    }
}

fn type_err(key: &str, expected: &'static str, found: &Value) -> ConfigError {
    ConfigError::Type { key: key.into(), expected, found: found.kind() }
}

/// Integer text, or a float text with a zero fraction (`10.0`, `1e2`
/// excluded: exponents are rare in configs and need float parsing).
fn parse_u64(n: &str) -> Option<u64> {
    let int = match n.split_once('.') {
        Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
        Some(_) => return None,
        None => n,
    };
    int.parse().ok()
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// The text from `start` to the cursor; both sit on ASCII bytes, so on
    /// char boundaries (`get` only to keep a panic path out of the .wasm).
    fn since(&self, start: usize) -> String {
        self.text.get(start..self.i).unwrap_or_default().into()
    }

    fn err(&self, expected: &'static str) -> ConfigError {
        ConfigError::Syntax { at: self.i, expected }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8, expected: &'static str) -> Result<(), ConfigError> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(expected))
        }
    }

    fn object(&mut self) -> Result<Vec<(String, Value)>, ConfigError> {
        self.eat(b'{', "'{'")?;
        let mut entries = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(entries);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("a key string"));
            }
            let key = self.string()?;
            self.eat(b':', "':'")?;
            let value = self.value()?;
            entries.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(entries);
                }
                _ => return Err(self.err("',' or '}'")),
            }
        }
    }

    fn value(&mut self) -> Result<Value, ConfigError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'{' | b'[') => {
                let start = self.i;
                self.skip_nested()?;
                Ok(Value::Nested(self.since(start)))
            }
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("a value")),
        }
    }

    fn word(&mut self, w: &'static str, v: Value) -> Result<Value, ConfigError> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("true, false or null"))
        }
    }

    fn number(&mut self) -> Result<Value, ConfigError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > from
        };
        if !digits(self) {
            return Err(self.err("a digit"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("a digit"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("a digit"));
            }
        }
        Ok(Value::Num(self.since(start)))
    }

    /// A string starting at the opening quote, escapes decoded.
    fn string(&mut self) -> Result<String, ConfigError> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("'\"'")),
                Some(b'"') => {
                    self.i += 1;
                    // The input is a &str and escapes push whole chars.
                    return String::from_utf8(out).map_err(|_| self.err("UTF-8"));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.i += 1;
                            let c = self.unicode_escape()?;
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        _ => return Err(self.err("an escape")),
                    };
                    self.i += 1;
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Some(b) if b < 0x20 => return Err(self.err("no control character")),
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    /// After `\u`: four hex digits, and a low surrogate after a high one.
    fn unicode_escape(&mut self) -> Result<char, ConfigError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.s[self.i..].starts_with(b"\\u") {
                return Err(self.err("a low surrogate"));
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err("a low surrogate"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err("a valid code point"))
    }

    fn hex4(&mut self) -> Result<u32, ConfigError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.err("a hex digit")),
            };
            v = v * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    /// Skips a nested object or array, strings included, checking brackets
    /// match (but not the full grammar inside: it is kept as text).
    fn skip_nested(&mut self) -> Result<(), ConfigError> {
        let mut stack = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("a closing bracket")),
                Some(b'"') => {
                    self.string()?;
                    continue;
                }
                Some(b @ (b'{' | b'[')) => stack.push(if b == b'{' { b'}' } else { b']' }),
                Some(b @ (b'}' | b']')) => {
                    if stack.pop() != Some(b) {
                        return Err(self.err("a matching bracket"));
                    }
                    if stack.is_empty() {
                        self.i += 1;
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_inputs() {
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
        assert_eq!(Config::parse("  ").unwrap(), Config::default());
        assert_eq!(Config::parse(" { } ").unwrap(), Config::default());
    }

    #[test]
    fn flat_values() {
        let c =
            Config::parse(r#"{"header":"x-tenant","percent":25,"on":true,"off":false,"n":null,"f":-1.5e3}"#).unwrap();
        assert_eq!(c.str("header").unwrap(), Some("x-tenant"));
        assert_eq!(c.u64("percent").unwrap(), Some(25));
        assert_eq!(c.bool("on").unwrap(), Some(true));
        assert!(!c.bool_or("off", true).unwrap());
        assert_eq!(c.str("n").unwrap(), None);
        assert_eq!(c.f64("f").unwrap(), Some(-1500.0));
        assert_eq!(c.str_or("missing", "dflt").unwrap(), "dflt");
        assert_eq!(c.u64_or("missing", 7).unwrap(), 7);
        assert_eq!(c.entries().count(), 6);
    }

    #[test]
    fn escapes() {
        let c = Config::parse(r#"{"a":"q\"b\\s\/n\nt\tu\u00e9\ud83d\ude00","ké":"ü"}"#).unwrap();
        assert_eq!(c.str("a").unwrap(), Some("q\"b\\s/n\nt\tué😀"));
        assert_eq!(c.str("ké").unwrap(), Some("ü"));
    }

    #[test]
    fn integers_from_float_text() {
        let c = Config::parse(r#"{"a":10.0,"b":10.5,"c":-1}"#).unwrap();
        assert_eq!(c.u64("a").unwrap(), Some(10));
        assert!(c.u64("b").is_err());
        assert!(c.u64("c").is_err());
    }

    #[test]
    fn nested_values_are_kept_raw() {
        let c = Config::parse(r#"{"zones":{"a":[1,2,{"b":"]}"}]},"x":1}"#).unwrap();
        assert_eq!(c.raw("zones").unwrap(), Some(r#"{"a":[1,2,{"b":"]}"}]}"#));
        assert_eq!(c.u64("x").unwrap(), Some(1));
    }

    #[test]
    fn type_errors_name_the_key() {
        let c = Config::parse(r#"{"percent":"ten"}"#).unwrap();
        let e = c.u64("percent").unwrap_err();
        assert_eq!(e.to_string(), "plugin_config.percent: expected a non-negative integer, found a string");
        let e = c.u64_in("percent", 0, 100, 10, "an integer 0-100").unwrap_err();
        assert_eq!(e.to_string(), "plugin_config.percent: expected an integer 0-100, found a string");
        let c = Config::parse(r#"{"percent":101}"#).unwrap();
        assert!(c.u64_in("percent", 0, 100, 10, "an integer 0-100").is_err());
        assert_eq!(c.u64_in("other", 0, 100, 10, "an integer 0-100").unwrap(), 10);
    }

    #[test]
    fn last_duplicate_wins() {
        let c = Config::parse(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(c.u64("a").unwrap(), Some(2));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "[]",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            r#"{"a":tru}"#,
            r#"{"a":"x"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":[1}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            "{\"a\":\"\n\"}",
            r#"{a:1}"#,
        ] {
            assert!(Config::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn never_panics_on_prefixes() {
        let text = r#"{"a":"x\u00e9\ud83d\ude00","b":[{"c":null}],"d":-12.5e-3,"e":true}"#;
        assert!(Config::parse(text).is_ok());
        for end in 0..text.len() {
            if text.is_char_boundary(end) {
                let _ = Config::parse(&text[..end]);
            }
        }
    }
}
