//! Parsers for the string forms config values take: durations, sizes, file
//! modes, addresses, hash keys, names. Pure functions returning a message
//! that `convert.rs` attaches to the key and its location.

use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::raw::IntOrStr;
use super::types::HashKey;

/// `"250ms"`, `"10s"`, `"2m"`, `"1h"`, or an integer number of seconds.
pub(crate) fn parse_duration(v: &IntOrStr) -> Result<Duration, String> {
    let s = match v {
        IntOrStr::Int(n) if *n < 0 => return Err(format!("duration {n} is negative")),
        IntOrStr::Int(n) => return Ok(Duration::from_secs(n.unsigned_abs())),
        IntOrStr::Str(s) => s.trim(),
    };
    let bad = |why: &dyn Display| format!("bad duration \"{s}\": {why}");
    if s.is_empty() {
        return Err("duration is empty; write e.g. \"10s\" or \"250ms\"".into());
    }
    if s.starts_with('-') {
        return Err(bad(&"negative durations are not allowed"));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad(&"expected a whole number followed by ms, s, m or h"));
    }
    let n: u64 = num.parse().map_err(|_| bad(&"number too large"))?;
    let secs_per = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "" => {
            return Err(bad(&"missing unit; use ms, s, m or h (or an integer for seconds)"));
        }
        u if u.starts_with('.') => {
            return Err(bad(&"use whole numbers, e.g. \"1500ms\" instead of \"1.5s\""));
        }
        u => {
            return Err(bad(&format_args!("unknown unit \"{u}\"; use ms, s, m or h")));
        }
    };
    n.checked_mul(secs_per).map(Duration::from_secs).ok_or_else(|| bad(&"too large"))
}

/// Bytes: an integer, or a whole number with `B`, `KiB`, `MiB` or `GiB`.
pub(crate) fn parse_size(v: &IntOrStr) -> Result<i64, String> {
    let s = match v {
        IntOrStr::Int(n) => return Ok(*n),
        IntOrStr::Str(s) => s.trim(),
    };
    let bad = |why: &str| format!("bad size \"{s}\": {why}");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad("expected a whole number of bytes, optionally with B, KiB, MiB or GiB"));
    }
    let n: i64 = num.parse().map_err(|_| bad("number too large"))?;
    let mul = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad("unknown unit; use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mul).ok_or_else(|| bad("too large"))
}

/// `"0600"`, `"600"`, `"0o600"`, or an integer (write `0o600` in TOML).
pub(crate) fn parse_mode(v: &IntOrStr) -> Result<u32, String> {
    let n = match v {
        IntOrStr::Int(n) => *n,
        IntOrStr::Str(s) => {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(format!("mode \"{s}\" is not octal digits like \"0600\""));
            }
            i64::from_str_radix(digits, 8).map_err(|_| format!("mode \"{s}\" is too large"))?
        }
    };
    if !(0..=0o777).contains(&n) {
        return Err(format!("mode {n} (octal {n:o}) is outside 0–0o777; write \"0600\" or 0o600"));
    }
    Ok(n as u32)
}

/// `IP:port`, `[v6]:port`, or `host:port` resolved now (first address).
pub(crate) fn parse_addr(s: &str, allow_port_zero: bool) -> Result<SocketAddr, String> {
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let Some((host, port)) = s.rsplit_once(':') else {
                return Err(format!("\"{s}\" has no port; write IP:port or host:port"));
            };
            if host.is_empty() {
                return Err(format!("\"{s}\" has no host; write IP:port or host:port"));
            }
            let Ok(port) = port.parse::<u16>() else {
                return Err(format!("\"{s}\": port \"{port}\" is not a number 0–65535"));
            };
            let mut found =
                (host, port).to_socket_addrs().map_err(|e| format!("host \"{host}\" does not resolve: {e}"))?;
            found.next().ok_or_else(|| format!("host \"{host}\" resolves to no address"))?
        }
    };
    if addr.port() == 0 && !allow_port_zero {
        return Err(format!("\"{s}\": port 0 is not a valid server port"));
    }
    Ok(addr)
}

/// `client_ip | path | uri | header:NAME | cookie:NAME`
pub(crate) fn parse_hash_key(s: &str) -> Result<HashKey, String> {
    let named = |name: &str, what: &str, ctor: fn(String) -> HashKey| {
        if is_token(name) {
            Ok(ctor(name.to_owned()))
        } else {
            Err(format!("hash_key \"{s}\": \"{name}\" is not a valid {what} name"))
        }
    };
    match s {
        "client_ip" => Ok(HashKey::ClientIp),
        "path" => Ok(HashKey::Path),
        "uri" => Ok(HashKey::Uri),
        _ => {
            if let Some(h) = s.strip_prefix("header:") {
                named(h, "header", |n| HashKey::Header(n.to_ascii_lowercase()))
            } else if let Some(c) = s.strip_prefix("cookie:") {
                named(c, "cookie", HashKey::Cookie)
            } else {
                Err(format!("unknown hash_key \"{s}\"; use client_ip, path, uri, header:NAME or cookie:NAME"))
            }
        }
    }
}

/// A pool's `plugin_config` table as compact JSON for the plugin's `init`.
/// Datetimes become their TOML spelling as strings. On failure returns the
/// dotted path below the table (`a.b[2]`) of the value that has no JSON form
/// (NaN and infinite floats) and a message.
pub(crate) fn plugin_config_json(t: &toml::Table) -> Result<String, (String, String)> {
    fn value(v: &toml::Value, path: &mut String) -> Result<serde_json::Value, (String, String)> {
        Ok(match v {
            toml::Value::String(s) => s.clone().into(),
            toml::Value::Integer(n) => (*n).into(),
            toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => n.into(),
                None => return Err((path.clone(), format!("{f} has no JSON form; use a finite number or a string"))),
            },
            toml::Value::Boolean(b) => (*b).into(),
            toml::Value::Datetime(d) => d.to_string().into(),
            toml::Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, item) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(value(item, path)?);
                    path.truncate(len);
                }
                out.into()
            }
            toml::Value::Table(t) => table(t, path)?.into(),
        })
    }
    fn table(
        t: &toml::Table,
        path: &mut String,
    ) -> Result<serde_json::Map<String, serde_json::Value>, (String, String)> {
        let mut out = serde_json::Map::new();
        for (k, v) in t {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            out.insert(k.clone(), value(v, path)?);
            path.truncate(len);
        }
        Ok(out)
    }
    let json = table(t, &mut String::new())?;
    Ok(serde_json::Value::Object(json).to_string())
}

/// RFC 9110 `token` (also RFC 6265's `cookie-name`).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Names appear in admin commands (`pool/server`) and logs: keep them plain.
pub(crate) fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// One `expect_status` item: `200`, `"200"` or `"200-399"`, each 100–599, lo ≤ hi.
pub(crate) fn parse_status_range(v: &IntOrStr) -> Result<(u16, u16), String> {
    let status = |n: i64| {
        u16::try_from(n)
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| format!("status {n} is outside 100–599"))
    };
    let s = match v {
        IntOrStr::Int(n) => return status(*n).map(|s| (s, s)),
        IntOrStr::Str(s) => s.trim(),
    };
    let num = |part: &str| {
        let part = part.trim();
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad status \"{s}\": write a status like \"200\" or a range like \"200-399\""));
        }
        part.parse::<i64>().map_err(|_| format!("bad status \"{s}\": number too large")).and_then(status)
    };
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (num(lo)?, num(hi)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(format!("status range \"{s}\" is empty: {lo} is above {hi}"));
    }
    Ok((lo, hi))
}

/// An origin-form request target (RFC 9112 §3.2.1): `/` followed by path
/// characters (RFC 3986 `pchar` or `/`, `%XX` escapes), and, when
/// `allow_query`, an optional `?query`.
pub(crate) fn is_origin_form(s: &str, allow_query: bool) -> bool {
    let (path, query) = match s.split_once('?') {
        Some((p, q)) if allow_query => (p, Some(q)),
        Some(_) => return false,
        None => (s, None),
    };
    let pchars = |part: &str, extra: &[u8]| {
        let b = part.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'%' {
                if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                    return false;
                }
                i += 3;
                continue;
            }
            if !(c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&c) || extra.contains(&c)) {
                return false;
            }
            i += 1;
        }
        true
    };
    path.starts_with('/') && pchars(path, b"") && query.is_none_or(|q| pchars(q, b"?"))
}

/// A `Host` field value: a host name, IPv4 address or `[IPv6]`, with an
/// optional `:port` (RFC 9110 §7.2, RFC 3986 `host [ ":" port ]`).
pub(crate) fn is_host(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b))
}
