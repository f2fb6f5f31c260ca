//! Raw configuration: serde structs that mirror the TOML file one to one.
//!
//! Nothing here is validated beyond TOML types and key names
//! (`deny_unknown_fields` everywhere, so a typo is an error, not a silently
//! ignored key). Values whose validation needs a location are wrapped in
//! [`Spanned`] so the conversion into [`crate::config::Config`] (in
//! `convert.rs`) can report `line:column`. Optional keys are `Option` (or
//! `#[serde(default)]` for lists) so that defaults live in one place: the
//! `Default` impls of the typed config.
//!
//! Keys a listener or server cannot work without (`bind`, `addr`) are still
//! `Option` here: a missing one is reported by the conversion together with
//! every other problem, instead of stopping the deserializer at the first.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub runtime: Option<Runtime>,
    pub admin: Option<Admin>,
    /// `[[listener]]` tables; at least one is required.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<Spanned<Listener>>,
    /// `[[pool]]` tables; at least one is required.
    #[serde(default, rename = "pool")]
    pub pools: Vec<Spanned<Pool>>,
    pub plugins: Option<Plugins>,
}

/// `[plugins]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugins {
    /// Relative to the config file's directory.
    pub dir: Option<Spanned<String>>,
    pub poll_interval: Option<Spanned<IntOrStr>>,
    pub call_timeout: Option<Spanned<IntOrStr>>,
    /// Bytes: an integer or a string such as `"4MiB"`.
    pub memory_limit: Option<Spanned<IntOrStr>>,
    pub max_failures: Option<Spanned<i64>>,
}

/// `[runtime]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub workers: Option<Spanned<i64>>,
    pub pin_workers: Option<bool>,
    pub log_level: Option<Spanned<String>>,
    pub access_log: Option<bool>,
    pub drain_timeout: Option<Spanned<IntOrStr>>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub socket: Option<Spanned<String>>,
    /// `"0600"` (octal digits) or an integer (`0o600`, `384`).
    pub mode: Option<Spanned<IntOrStr>>,
}

/// `[[listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: Option<Spanned<String>>,
    pub bind: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub pool: Option<Spanned<String>>,
    pub forward_headers: Option<bool>,
    pub backlog: Option<Spanned<i64>>,
    pub limits: Option<Limits>,
    pub timeouts: Option<ListenerTimeouts>,
    pub status_path: Option<Spanned<String>>,
}

/// `[listener.limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Bytes: an integer or a string such as `"64KiB"`.
    pub max_head_size: Option<Spanned<IntOrStr>>,
    pub max_headers: Option<Spanned<i64>>,
    /// Bytes: an integer or a string such as `"8KiB"`.
    pub max_uri_length: Option<Spanned<IntOrStr>>,
    pub max_connections: Option<Spanned<i64>>,
}

/// `[listener.timeouts]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTimeouts {
    pub client_header: Option<Spanned<IntOrStr>>,
    pub keepalive: Option<Spanned<IntOrStr>>,
    pub client_body: Option<Spanned<IntOrStr>>,
    pub tunnel: Option<Spanned<IntOrStr>>,
}

/// `[[pool]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: Option<Spanned<String>>,
    /// A built-in strategy or `"plugin:NAME"`.
    pub strategy: Option<Spanned<String>>,
    /// The built-in strategy behind a plugin; only with `"plugin:NAME"`.
    pub fallback: Option<Spanned<String>>,
    /// Any table, handed to the plugin as JSON; only with `"plugin:NAME"`.
    pub plugin_config: Option<Spanned<toml::Table>>,
    pub hash_key: Option<Spanned<String>>,
    pub sticky: Option<Spanned<Sticky>>,
    pub retries: Option<Spanned<i64>>,
    pub timeouts: Option<PoolTimeouts>,
    pub keepalive: Option<Keepalive>,
    pub passive: Option<Passive>,
    pub health: Option<Spanned<Health>>,
    pub agent: Option<Spanned<Agent>>,
    pub outlier: Option<Outlier>,
    pub fail_open: Option<bool>,
    pub slowstart: Option<Spanned<IntOrStr>>,
    #[serde(default)]
    pub zones: Vec<Spanned<String>>,
    pub zone_failover_threshold: Option<Spanned<f64>>,
    /// `[[pool.server]]` tables.
    #[serde(default, rename = "server")]
    pub servers: Vec<Spanned<Server>>,
}

/// `sticky = true|false` or a `[pool.sticky]` table (which turns it on).
#[derive(Debug)]
pub enum Sticky {
    Enabled(bool),
    Table(StickyTable),
}

/// `[pool.sticky]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyTable {
    pub cookie: Option<Spanned<String>>,
    pub max_age: Option<Spanned<IntOrStr>>,
}

/// `[pool.timeouts]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTimeouts {
    pub connect: Option<Spanned<IntOrStr>>,
    pub response: Option<Spanned<IntOrStr>>,
}

/// `[pool.keepalive]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    pub max_idle: Option<Spanned<i64>>,
    pub idle_timeout: Option<Spanned<IntOrStr>>,
}

/// `[pool.passive]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passive {
    pub max_fails: Option<Spanned<i64>>,
    pub cooldown: Option<Spanned<IntOrStr>>,
}

/// `[pool.health]`: one table for every check type; keys that belong to
/// another type than `type` are rejected by the conversion (naming the key),
/// not here, so that all of them are reported.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `http | tcp | redis | pgsql`; required.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub interval: Option<Spanned<IntOrStr>>,
    pub fastinterval: Option<Spanned<IntOrStr>>,
    pub timeout: Option<Spanned<IntOrStr>>,
    pub fall: Option<Spanned<i64>>,
    pub rise: Option<Spanned<i64>>,
    pub port: Option<Spanned<i64>>,
    // http
    pub method: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub expect_status: Option<Spanned<ExpectStatus>>,
    pub body_contains: Option<Spanned<String>>,
    // pgsql
    pub user: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
}

/// `expect_status = 200 | "200" | "200-399" | [200, 204, "300-302"]`
#[derive(Debug)]
pub enum ExpectStatus {
    One(IntOrStr),
    List(Vec<Spanned<IntOrStr>>),
}

/// `[pool.agent]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Required.
    pub port: Option<Spanned<i64>>,
    pub interval: Option<Spanned<IntOrStr>>,
    pub timeout: Option<Spanned<IntOrStr>>,
    pub send: Option<String>,
}

/// `[pool.outlier]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    pub consecutive_5xx: Option<Spanned<i64>>,
    pub consecutive_errors: Option<Spanned<i64>>,
    pub base_ejection: Option<Spanned<IntOrStr>>,
    pub max_ejection: Option<Spanned<IntOrStr>>,
    pub max_ejection_percent: Option<Spanned<i64>>,
}

/// `[[pool.server]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: Option<Spanned<String>>,
    pub addr: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub zone: Option<Spanned<String>>,
    pub backup: Option<bool>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
}

/// A value that may be written as an integer or a string: durations
/// (`10` = seconds, `"250ms"`), sizes (`65536`, `"64KiB"`), file modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrStr {
    Int(i64),
    Str(String),
}

/// A problem found while turning raw config into typed config, located by
/// the byte range of the offending value in the TOML source (`None` when it
/// concerns the whole file, such as a missing `[[listener]]`). `load.rs`
/// turns it into a `ConfigError` with line:column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub span: Option<Range<usize>>,
    /// Dotted path with indices, e.g. `pool[0].server[1].weight`.
    pub key: String,
    pub message: String,
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                i64::try_from(v).map(IntOrStr::Int).map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ExpectStatus {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExpectStatus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status (200), a range (\"200-399\") or an array of them")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExpectStatus, E> {
                Ok(ExpectStatus::One(IntOrStr::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExpectStatus, E> {
                IntOrStr::deserialize(de::value::U64Deserializer::new(v)).map(ExpectStatus::One)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExpectStatus, E> {
                Ok(ExpectStatus::One(IntOrStr::Str(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExpectStatus, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ExpectStatus::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Sticky {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sticky;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a table with `cookie` and `max_age`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Sticky, E> {
                Ok(Sticky::Enabled(v))
            }
            // Going through `MapAccessDeserializer` keeps the derived
            // `deny_unknown_fields` message and the toml spans of the table.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Sticky, A::Error> {
                StickyTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(Sticky::Table)
            }
        }
        d.deserialize_any(V)
    }
}
