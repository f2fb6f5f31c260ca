//! The admin socket: a Unix socket with a line protocol in the spirit of
//! HAProxy's runtime API, its server thread, and `fastlb ctl`, its client.
//!
//! - [`protocol`]: one line → one [`protocol::Command`].
//! - [`format`]: answers as aligned text or compact one-line JSON.
//! - [`status`]: the listener `status_path` page (the old balancer's `/proxy/status`).
//! - [`server`]: the `fastlb-admin` thread ([`spawn_admin`]).
//! - [`ctl`]: the `fastlb ctl` client.
//!
//! # Wire framing
//!
//! The client sends commands, one per line (`\n`, an optional `\r` before it
//! is ignored; at most [`MAX_LINE`] bytes). For every line the server writes
//! one answer: zero or more non-empty lines, each ending in `\n`, then one
//! empty line (`\n`). So an answer ends at the first empty line, and several
//! commands can be pipelined on one connection. Failures are a single line
//! starting with `error: ` (also for `show … json`). `quit`, EOF, or a line
//! longer than [`MAX_LINE`] (answered with an error first) closes the
//! connection.
//!
//! ```text
//! > show info\n
//! < version:            0.1.0\n
//! < …\n
//! < \n
//! > set weight web/s1 300\n
//! < error: bad weight '300': expected 0-256\n
//! < \n
//! ```

pub mod ctl;
#[cfg(test)]
mod fake;
pub mod format;
pub mod protocol;
pub mod server;
pub mod status;

pub use server::spawn_admin;
pub use status::status_json;

use crate::control::ControlApi;
use protocol::{Command, Show};

/// Longest command line the server accepts, in bytes (without the `\n`).
pub const MAX_LINE: usize = 4096;

/// What the server does with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send this answer (unframed: see [`frame`]).
    Answer(String),
    /// Close the connection without an answer (`quit`).
    Close,
}

/// Parses and runs one command line against the control side. A line that
/// does not parse calls nothing on `api`.
pub fn respond(api: &dyn ControlApi, line: &str) -> Reply {
    let cmd = match protocol::parse(line) {
        Ok(cmd) => cmd,
        Err(e) => return Reply::Answer(format!("error: {e}")),
    };
    let answer = match cmd {
        Command::Quit => return Reply::Close,
        Command::Help => format::HELP.to_string(),
        Command::Show { what, json } => show(api, what, json),
        Command::Enable { key } => format::command_result(api.enable_server(&key)),
        Command::Disable { key } => format::command_result(api.disable_server(&key)),
        Command::Drain { key } => format::command_result(api.drain_server(&key)),
        Command::SetWeight { key, weight } => format::command_result(api.set_weight(&key, weight)),
        Command::AddServer { key, addr, weight, backup } => {
            format::command_result(api.add_server(&key, &addr, weight, backup))
        }
        Command::DelServer { key } => format::command_result(api.del_server(&key)),
        Command::Reload => format::command_result(api.reload()),
        Command::ReloadPlugins => format::command_result(api.reload_plugins()),
        Command::EnablePlugin { name } => format::command_result(api.set_plugin_enabled(&name, true)),
        Command::DisablePlugin { name } => format::command_result(api.set_plugin_enabled(&name, false)),
    };
    Reply::Answer(answer)
}

fn show(api: &dyn ControlApi, what: Show, json: bool) -> String {
    match (what, json) {
        (Show::Info, false) => format::info_text(&api.info()),
        (Show::Info, true) => format::info_json(&api.info()),
        (Show::Stat, false) => format::stat_text(&api.pools()),
        (Show::Stat, true) => format::stat_json(&api.info(), &api.pools()),
        (Show::Health, false) => format::health_text(&api.pools()),
        (Show::Health, true) => format::health_json(&api.pools()),
        (Show::Events(n), false) => format::events_text(&api.events(n)),
        (Show::Events(n), true) => format::events_json(&api.events(n)),
        (Show::Pools, false) => format::pools_text(&api.pools()),
        (Show::Pools, true) => format::pools_json(&api.pools()),
        (Show::Workers, false) => format::workers_text(&api.workers()),
        (Show::Workers, true) => format::workers_json(&api.workers()),
        (Show::Plugins, false) => format::plugins_text(&api.plugins()),
        (Show::Plugins, true) => format::plugins_json(&api.plugins()),
    }
}

/// An answer as it goes on the wire: its non-empty lines, each ending in
/// `\n`, then the empty line that ends it. Empty lines inside `answer` are
/// dropped so they cannot end it early.
pub fn frame(answer: &str) -> String {
    let mut out = String::with_capacity(answer.len() + 2);
    for line in answer.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake::FakeControl;

    fn answer(api: &FakeControl, line: &str) -> String {
        match respond(api, line) {
            Reply::Answer(a) => a,
            Reply::Close => panic!("{line}: closed"),
        }
    }

    #[test]
    fn commands_reach_the_control() {
        let api = FakeControl::default();
        assert_eq!(answer(&api, "enable server web/s1"), "web/s1: enabled");
        assert_eq!(answer(&api, "disable server web/s1"), "web/s1: disabled (maint)");
        assert_eq!(answer(&api, "drain server web/s2"), "web/s2: draining");
        assert_eq!(answer(&api, "set weight web/s1 7"), "web/s1: weight 7");
        assert_eq!(answer(&api, "add server web/s3 10.0.0.3:80 weight 4 backup"), "web/s3: added");
        assert_eq!(answer(&api, "del server api/a1"), "api/a1: deleted");
        assert_eq!(answer(&api, "reload"), "reloaded lb.toml (generation 2)");
        assert_eq!(
            api.calls(),
            [
                "enable web/s1",
                "disable web/s1",
                "drain web/s2",
                "set_weight web/s1 7",
                "add web/s3 10.0.0.3:80 Some(4) true",
                "del api/a1",
                "reload"
            ]
        );
    }

    #[test]
    fn control_errors_and_parse_errors() {
        let api = FakeControl::default();
        assert_eq!(answer(&api, "enable server web/nope"), "error: no server 'web/nope'");
        assert_eq!(answer(&api, "add server web/s1 10.0.0.9:80"), "error: server 'web/s1' already exists");
        for bad in ["set weight web/s1 300", "add server web/s3 nope", "del server web", "bogus", "", "enable server"] {
            assert!(answer(&api, bad).starts_with("error: "), "{bad}");
        }
        assert!(api.calls().is_empty(), "{:?}", api.calls());
    }

    #[test]
    fn every_show_answers() {
        let api = FakeControl::default();
        for what in ["info", "stat", "health", "events", "events 1", "pools", "workers"] {
            let text = answer(&api, &format!("show {what}"));
            assert!(!text.starts_with("error:") && !text.is_empty(), "{what}: {text}");
            let json = answer(&api, &format!("show {what} json"));
            serde_json::from_str::<serde_json::Value>(&json).unwrap_or_else(|e| panic!("{what}: {e}: {json}"));
        }
        assert!(answer(&api, "help").contains("set weight POOL/SERVER W"));
        assert_eq!(respond(&api, "quit"), Reply::Close);
        assert!(api.calls().is_empty());
    }

    #[test]
    fn framing() {
        assert_eq!(frame("a\nb\n"), "a\nb\n\n");
        assert_eq!(frame("a\n\n\nb"), "a\nb\n\n");
        assert_eq!(frame("a\r\n"), "a\n\n");
        assert_eq!(frame(""), "\n");
        assert_eq!(frame("{\"k\":1}"), "{\"k\":1}\n\n");
    }
}
