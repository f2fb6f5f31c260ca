//! One admin line → one [`Command`], or a one-line reason it is not one.
//!
//! Words are separated by ASCII whitespace. Every command may end with the
//! word `json` (what `fastlb ctl -j` appends); only `show` commands change
//! their answer for it, the others answer the same plain line either way.

use std::net::SocketAddr;

/// Most events `show events N` returns.
pub const MAX_EVENTS: usize = 10_000;
/// `show events` without N.
pub const DEFAULT_EVENTS: usize = 50;
/// Highest weight `set weight` and `add server … weight W` accept.
pub const MAX_WEIGHT: u16 = 256;

/// What a `show` command reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Info,
    Stat,
    Health,
    /// The newest N state changes.
    Events(usize),
    Pools,
    Workers,
    Plugins,
}

/// A parsed admin command. Server keys are `pool/server`, checked for shape
/// only: whether the server exists is the control side's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Show {
        what: Show,
        json: bool,
    },
    Enable {
        key: String,
    },
    Disable {
        key: String,
    },
    Drain {
        key: String,
    },
    SetWeight {
        key: String,
        weight: u16,
    },
    AddServer {
        key: String,
        addr: String,
        weight: Option<u16>,
        backup: bool,
    },
    DelServer {
        key: String,
    },
    Reload,
    /// Rescan the plugins directory now.
    ReloadPlugins,
    EnablePlugin {
        name: String,
    },
    DisablePlugin {
        name: String,
    },
    /// Close the connection (no answer).
    Quit,
}

const USAGE_ENABLE: &str = "usage: enable server POOL/SERVER";
const USAGE_DISABLE: &str = "usage: disable server POOL/SERVER";
const USAGE_DRAIN: &str = "usage: drain server POOL/SERVER";
const USAGE_SET_WEIGHT: &str = "usage: set weight POOL/SERVER WEIGHT (0-256)";
const USAGE_ADD: &str = "usage: add server POOL/SERVER ADDR [weight W] [backup]";
const USAGE_DEL: &str = "usage: del server POOL/SERVER";

/// Parses one line (without its line ending). The error is one line, without
/// the `error: ` prefix the server puts in front of it.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(&first) = words.first() else {
        return Err("empty command; try 'help'".into());
    };
    let json = words.len() > 1 && words.last() == Some(&"json");
    if json {
        words.pop();
    }
    let unknown = || format!("unknown command '{}'; try 'help'", words.join(" "));
    match (first, words.get(1).copied()) {
        ("help", _) => no_more(&words, 1, "usage: help").map(|()| Command::Help),
        ("quit", _) => no_more(&words, 1, "usage: quit").map(|()| Command::Quit),
        ("reload", Some("plugins")) => no_more(&words, 2, "usage: reload plugins").map(|()| Command::ReloadPlugins),
        ("reload", _) => no_more(&words, 1, "usage: reload").map(|()| Command::Reload),
        ("enable", Some("plugin")) => {
            one_name(&words, "usage: enable plugin NAME").map(|name| Command::EnablePlugin { name })
        }
        ("disable", Some("plugin")) => {
            one_name(&words, "usage: disable plugin NAME").map(|name| Command::DisablePlugin { name })
        }
        ("show", Some(what)) => parse_show(what, &words[2..], json).ok_or_else(unknown)?,
        ("enable", Some("server")) => one_key(&words, USAGE_ENABLE).map(|key| Command::Enable { key }),
        ("disable", Some("server")) => one_key(&words, USAGE_DISABLE).map(|key| Command::Disable { key }),
        ("drain", Some("server")) => one_key(&words, USAGE_DRAIN).map(|key| Command::Drain { key }),
        ("del", Some("server")) => one_key(&words, USAGE_DEL).map(|key| Command::DelServer { key }),
        ("set", Some("weight")) => {
            let [_, _, key, weight] = words[..] else {
                return Err(USAGE_SET_WEIGHT.into());
            };
            Ok(Command::SetWeight { key: server_key(key)?, weight: parse_weight(weight)? })
        }
        ("add", Some("server")) => parse_add(&words[2..]),
        _ => Err(unknown()),
    }
}

/// `VERB plugin NAME`: the plugin's name (its file stem).
fn one_name(words: &[&str], usage: &str) -> Result<String, String> {
    match words {
        [_, _, name]
            if !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            Ok(name.to_string())
        }
        [_, _, name] => Err(format!("bad plugin name '{name}'")),
        _ => Err(usage.into()),
    }
}

/// `None` when `what` is not a show command (→ "unknown command").
fn parse_show(what: &str, args: &[&str], json: bool) -> Option<Result<Command, String>> {
    let simple = |what: Show| {
        Some(if args.is_empty() {
            Ok(Command::Show { what, json })
        } else {
            Err(format!("unexpected '{}'; usage: show {} [json]", args.join(" "), show_name(what)))
        })
    };
    match what {
        "info" => simple(Show::Info),
        "stat" => simple(Show::Stat),
        "health" => simple(Show::Health),
        "pools" => simple(Show::Pools),
        "workers" => simple(Show::Workers),
        "plugins" => simple(Show::Plugins),
        "events" => Some(match args {
            [] => Ok(Command::Show { what: Show::Events(DEFAULT_EVENTS), json }),
            [n] => match n.parse::<usize>() {
                Ok(n) if (1..=MAX_EVENTS).contains(&n) => Ok(Command::Show { what: Show::Events(n), json }),
                _ => Err(format!("bad event count '{n}': expected 1-{MAX_EVENTS}")),
            },
            _ => Err("usage: show events [N] [json]".into()),
        }),
        _ => None,
    }
}

fn show_name(what: Show) -> &'static str {
    match what {
        Show::Info => "info",
        Show::Stat => "stat",
        Show::Health => "health",
        Show::Events(_) => "events",
        Show::Pools => "pools",
        Show::Workers => "workers",
        Show::Plugins => "plugins",
    }
}

fn no_more(words: &[&str], n: usize, usage: &str) -> Result<(), String> {
    if words.len() == n { Ok(()) } else { Err(format!("unexpected '{}'; {usage}", words[n..].join(" "))) }
}

/// `VERB server KEY`
fn one_key(words: &[&str], usage: &str) -> Result<String, String> {
    match words {
        [_, _, key] => server_key(key),
        _ => Err(usage.into()),
    }
}

/// `add server KEY ADDR [weight W] [backup]`, options in any order, once each.
fn parse_add(args: &[&str]) -> Result<Command, String> {
    let [key, addr, rest @ ..] = args else {
        return Err(USAGE_ADD.into());
    };
    let key = server_key(key)?;
    let addr = server_addr(addr)?;
    let (mut weight, mut backup) = (None, false);
    let mut rest = rest.iter();
    while let Some(&word) = rest.next() {
        match word {
            "weight" if weight.is_none() => {
                let w = rest.next().ok_or_else(|| format!("'weight' needs a value; {USAGE_ADD}"))?;
                weight = Some(parse_weight(w)?);
            }
            "backup" if !backup => backup = true,
            _ => return Err(format!("unexpected '{word}'; {USAGE_ADD}")),
        }
    }
    Ok(Command::AddServer { key, addr, weight, backup })
}

/// `pool/server`: two non-empty names around exactly one `/`.
fn server_key(key: &str) -> Result<String, String> {
    match key.split_once('/') {
        Some((pool, server)) if !pool.is_empty() && !server.is_empty() && !server.contains('/') => Ok(key.into()),
        _ => Err(format!("bad server '{key}': expected POOL/SERVER")),
    }
}

fn parse_weight(w: &str) -> Result<u16, String> {
    match w.parse::<u16>() {
        Ok(w) if w <= MAX_WEIGHT => Ok(w),
        _ => Err(format!("bad weight '{w}': expected 0-{MAX_WEIGHT}")),
    }
}

/// `IP:PORT` (IPv6 in brackets) or `HOST:PORT`, port 1-65535. Host names are
/// resolved by the control side.
fn server_addr(addr: &str) -> Result<String, String> {
    let bad = || format!("bad address '{addr}': expected IP:PORT or HOST:PORT");
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return if sa.port() == 0 { Err(bad()) } else { Ok(addr.into()) };
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    match port.parse::<u16>() {
        Ok(p) if p != 0 && host_ok => Ok(addr.into()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(what: Show, json: bool) -> Command {
        Command::Show { what, json }
    }

    fn err(line: &str) -> String {
        parse(line).expect_err(line)
    }

    #[test]
    fn help_quit_reload() {
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("  help  "), Ok(Command::Help));
        assert_eq!(parse("help json"), Ok(Command::Help));
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert_eq!(parse("reload"), Ok(Command::Reload));
        assert_eq!(parse("reload json"), Ok(Command::Reload));
        assert_eq!(parse("reload plugins"), Ok(Command::ReloadPlugins));
        assert_eq!(parse("enable plugin canary"), Ok(Command::EnablePlugin { name: "canary".into() }));
        assert_eq!(parse("disable plugin least-latency"), Ok(Command::DisablePlugin { name: "least-latency".into() }));
        assert!(parse("disable plugin").is_err());
        assert!(parse("enable plugin a b").is_err());
        assert!(parse("enable plugin ../x").is_err());
        assert!(parse("reload plugins now").is_err());
        assert!(err("reload now").starts_with("unexpected 'now'"));
        assert!(err("help me").starts_with("unexpected 'me'"));
    }

    #[test]
    fn show_commands_text_and_json() {
        for (word, what) in [
            ("info", Show::Info),
            ("stat", Show::Stat),
            ("health", Show::Health),
            ("pools", Show::Pools),
            ("workers", Show::Workers),
            ("plugins", Show::Plugins),
        ] {
            assert_eq!(parse(&format!("show {word}")), Ok(show(what, false)), "{word}");
            assert_eq!(parse(&format!("show {word} json")), Ok(show(what, true)), "{word}");
            assert_eq!(parse(&format!("show\t{word}  json\r")), Ok(show(what, true)), "{word}");
            assert!(err(&format!("show {word} extra")).contains("usage: show"), "{word}");
        }
    }

    #[test]
    fn show_events_count() {
        assert_eq!(parse("show events"), Ok(show(Show::Events(50), false)));
        assert_eq!(parse("show events json"), Ok(show(Show::Events(50), true)));
        assert_eq!(parse("show events 7"), Ok(show(Show::Events(7), false)));
        assert_eq!(parse("show events 7 json"), Ok(show(Show::Events(7), true)));
        assert_eq!(parse("show events 10000"), Ok(show(Show::Events(10_000), false)));
        assert!(err("show events 0").starts_with("bad event count '0'"));
        assert!(err("show events 10001").starts_with("bad event count"));
        assert!(err("show events -3").starts_with("bad event count"));
        assert!(err("show events many").starts_with("bad event count"));
        assert_eq!(err("show events json 5"), "usage: show events [N] [json]");
        assert_eq!(err("show events 1 2"), "usage: show events [N] [json]");
    }

    #[test]
    fn server_state_commands() {
        assert_eq!(parse("enable server web/s1"), Ok(Command::Enable { key: "web/s1".into() }));
        assert_eq!(parse("disable server web/s1"), Ok(Command::Disable { key: "web/s1".into() }));
        assert_eq!(parse("drain server web/s1 json"), Ok(Command::Drain { key: "web/s1".into() }));
        assert_eq!(parse("del server web/s1"), Ok(Command::DelServer { key: "web/s1".into() }));
        assert_eq!(err("enable server"), USAGE_ENABLE);
        assert_eq!(err("disable server a/b c"), USAGE_DISABLE);
        assert_eq!(err("drain server"), USAGE_DRAIN);
        assert_eq!(err("del server a/b extra"), USAGE_DEL);
        for bad in ["web", "/s1", "web/", "a/b/c", "/"] {
            assert_eq!(err(&format!("enable server {bad}")), format!("bad server '{bad}': expected POOL/SERVER"));
        }
    }

    #[test]
    fn set_weight() {
        assert_eq!(parse("set weight web/s1 0"), Ok(Command::SetWeight { key: "web/s1".into(), weight: 0 }));
        assert_eq!(parse("set weight web/s1 256"), Ok(Command::SetWeight { key: "web/s1".into(), weight: 256 }));
        assert_eq!(err("set weight web/s1 300"), "bad weight '300': expected 0-256");
        assert_eq!(err("set weight web/s1 -1"), "bad weight '-1': expected 0-256");
        assert_eq!(err("set weight web/s1 50%"), "bad weight '50%': expected 0-256");
        assert_eq!(err("set weight web/s1"), USAGE_SET_WEIGHT);
        assert_eq!(err("set weight web/s1 5 6"), USAGE_SET_WEIGHT);
        assert_eq!(err("set weight s1 5"), "bad server 's1': expected POOL/SERVER");
    }

    #[test]
    fn add_server() {
        let add =
            |addr: &str, weight, backup| Command::AddServer { key: "web/s3".into(), addr: addr.into(), weight, backup };
        assert_eq!(parse("add server web/s3 10.0.0.3:80"), Ok(add("10.0.0.3:80", None, false)));
        assert_eq!(parse("add server web/s3 [::1]:8080 weight 5"), Ok(add("[::1]:8080", Some(5), false)));
        assert_eq!(parse("add server web/s3 app-3.internal:80 backup"), Ok(add("app-3.internal:80", None, true)));
        assert_eq!(parse("add server web/s3 h:80 backup weight 0"), Ok(add("h:80", Some(0), true)));
        assert_eq!(parse("add server web/s3 h:80 weight 9 backup json"), Ok(add("h:80", Some(9), true)));
        assert_eq!(err("add server web/s3"), USAGE_ADD);
        assert_eq!(err("add server"), USAGE_ADD);
        assert!(err("add server web/s3 h:80 weight").starts_with("'weight' needs a value"));
        assert_eq!(err("add server web/s3 h:80 weight 300"), "bad weight '300': expected 0-256");
        assert!(err("add server web/s3 h:80 backup backup").starts_with("unexpected 'backup'"));
        assert!(err("add server web/s3 h:80 weight 1 weight 2").starts_with("unexpected 'weight'"));
        assert!(err("add server web/s3 h:80 fast").starts_with("unexpected 'fast'"));
        assert!(err("add server s3 h:80").starts_with("bad server 's3'"));
        for bad in ["10.0.0.3", "10.0.0.3:0", "10.0.0.3:99999", "::1:80", "host:", ":80", "-h:80", "a..b:80", "h_x:80"]
        {
            assert_eq!(
                err(&format!("add server web/s3 {bad}")),
                format!("bad address '{bad}': expected IP:PORT or HOST:PORT")
            );
        }
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(err("frobnicate"), "unknown command 'frobnicate'; try 'help'");
        assert_eq!(err("show"), "unknown command 'show'; try 'help'");
        assert_eq!(err("show nothing json"), "unknown command 'show nothing'; try 'help'");
        assert_eq!(err("enable"), "unknown command 'enable'; try 'help'");
        assert_eq!(err("enable pool web"), "unknown command 'enable pool web'; try 'help'");
        assert_eq!(err("set"), "unknown command 'set'; try 'help'");
        assert_eq!(err("SHOW INFO"), "unknown command 'SHOW INFO'; try 'help'");
        assert_eq!(err("json"), "unknown command 'json'; try 'help'");
        assert_eq!(err(""), "empty command; try 'help'");
        assert_eq!(err("   \t"), "empty command; try 'help'");
    }
}
