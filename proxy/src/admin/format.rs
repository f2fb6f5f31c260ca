//! Answers as text (aligned columns for people) or JSON (for scripts).
//!
//! JSON answers are compact, on one line: a script reads one line per answer
//! and the blank-line framing (see [`crate::admin`]) can never collide with
//! the body. Text answers never contain an empty line for the same reason.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::control::{CommandError, Event, Info, PoolStat, ServerStat, WorkerStat};
use crate::plugin::PluginStat;

/// The `help` answer.
pub const HELP: &str = "\
commands (add 'json' at the end of any show command for JSON):
  help                                        this list
  show info                                   process: version, uptime, totals
  show stat                                   one line per server: state, weights, traffic, errors
  show health                                 health state, reason and last check per server
  show events [N]                             the newest N state changes (default 50)
  show pools                                  pools: strategy, sticky sessions, health check
  show workers                                per-core connections and requests
  show plugins                                WASM plugins: file, hash, generation, calls, failures, state
  enable server POOL/SERVER                   back to up (leaves drain or maintenance)
  disable server POOL/SERVER                  maintenance: no traffic at all
  drain server POOL/SERVER                    no new clients; sticky clients and open requests finish
  set weight POOL/SERVER W                    configured weight, 0-256
  add server POOL/SERVER ADDR [weight W] [backup]
                                              add a server at run time (ADDR: IP:PORT or HOST:PORT)
  del server POOL/SERVER                      remove a server (drain or disable it first)
  reload                                      re-read the config file; on error nothing changes
  reload plugins                              rescan the plugins directory now
  enable plugin NAME                          re-enable a plugin (closes its circuit breaker)
  disable plugin NAME                         stop calling a plugin; its pools use their fallback
  quit                                        close this connection";

/// A server takes new traffic: up (not drained, in maintenance, down or ejected).
pub fn is_active(s: &ServerStat) -> bool {
    s.state == "up"
}

/// `http://ADDR`, the form the old balancer's status page used for nodes.
pub fn server_url(addr: &str) -> String {
    format!("http://{addr}")
}

/// URLs of the servers taking new traffic, pool order.
pub fn active_nodes(pools: &[PoolStat]) -> Vec<String> {
    pools.iter().flat_map(|p| &p.servers).filter(|s| is_active(s)).map(|s| server_url(&s.addr)).collect()
}

/// A command's outcome: its message, or `error: …`.
pub fn command_result(result: Result<String, CommandError>) -> String {
    match result {
        Ok(msg) if msg.trim().is_empty() => "ok".into(),
        Ok(msg) => msg,
        Err(e) => format!("error: {e}"),
    }
}

pub fn info_text(i: &Info) -> String {
    let rows: [(&str, String); 13] = [
        ("version", i.version.clone()),
        ("pid", i.pid.to_string()),
        ("uptime", duration(i.uptime_s)),
        ("workers", i.workers.to_string()),
        ("config", i.config_path.clone().unwrap_or_else(|| "-".into())),
        ("generation", i.generation.to_string()),
        ("config generation", i.config_generation.to_string()),
        ("connections open", i.connections_open.to_string()),
        ("connections total", i.connections_total.to_string()),
        ("requests total", i.requests_total.to_string()),
        ("errors total", i.errors_total.to_string()),
        ("bytes in", bytes(i.bytes_in)),
        ("bytes out", bytes(i.bytes_out)),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{:<width$} {v}", format!("{k}:"));
    }
    out
}

pub fn info_json(i: &Info) -> String {
    to_json(i)
}

/// `show stat`: one line per server, all pools.
pub fn stat_text(pools: &[PoolStat]) -> String {
    let mut t = Table::new(&[
        ("SERVER", L),
        ("STATE", L),
        ("WEIGHT", R),
        ("ACT", R),
        ("REQ", R),
        ("2XX", R),
        ("3XX", R),
        ("4XX", R),
        ("5XX", R),
        ("CONNERR", R),
        ("RETRY", R),
        ("IN", R),
        ("OUT", R),
        ("EWMA", R),
        ("SINCE", R),
        ("LAST CHECK", L),
    ]);
    for s in pools.iter().flat_map(|p| &p.servers) {
        let mut state = s.state.clone();
        if s.backup {
            state.push_str(" (backup)");
        }
        t.row(vec![
            s.key.clone(),
            state,
            format!("{}/{}", s.weight_effective, s.weight_configured),
            s.active.to_string(),
            s.requests.to_string(),
            s.responses[1].to_string(),
            s.responses[2].to_string(),
            s.responses[3].to_string(),
            s.responses[4].to_string(),
            s.connect_errors.to_string(),
            s.retries.to_string(),
            bytes(s.bytes_in),
            bytes(s.bytes_out),
            format!("{:.1}ms", s.ewma_latency_us as f64 / 1000.0),
            duration(s.seconds_in_state),
            s.last_check.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut out = t.render();
    for p in pools.iter().filter(|p| p.panic) {
        let _ = writeln!(out, "pool {}: PANIC, no healthy server: using all of them (fail_open)", p.name);
    }
    out
}

/// `show stat json`: `{"uptime", "active_nodes", "pools": [PoolStat + "algorithm", "sticky_sessions"]}`.
/// `uptime` (seconds), `active_nodes`, `algorithm` and `sticky_sessions` carry
/// what the old balancer's `/proxy/status` showed.
pub fn stat_json(info: &Info, pools: &[PoolStat]) -> String {
    let active = active_nodes(pools);
    let pools: Vec<Value> = pools
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("algorithm".into(), p.strategy.clone().into());
                m.insert("sticky_sessions".into(), p.sticky.into());
            }
            v
        })
        .collect();
    json!({ "uptime": info.uptime_s, "active_nodes": active, "pools": pools }).to_string()
}

pub fn health_text(pools: &[PoolStat]) -> String {
    let mut t =
        Table::new(&[("SERVER", L), ("STATE", L), ("SINCE", R), ("CHECK MS", R), ("LAST CHECK", L), ("REASON", L)]);
    for s in pools.iter().flat_map(|p| &p.servers) {
        t.row(vec![
            s.key.clone(),
            s.state.clone(),
            duration(s.seconds_in_state),
            s.last_check_duration_ms.map_or_else(|| "-".into(), |ms| format!("{ms:.1}")),
            s.last_check.clone().unwrap_or_else(|| "-".into()),
            if s.reason.is_empty() { "-".into() } else { s.reason.clone() },
        ]);
    }
    t.render()
}

/// One object per server: key, state, reason, last check and its duration, seconds in state.
pub fn health_json(pools: &[PoolStat]) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        key: &'a str,
        state: &'a str,
        reason: &'a str,
        last_check: Option<&'a str>,
        last_check_duration_ms: Option<f64>,
        seconds_in_state: u64,
    }
    let rows: Vec<Row> = pools
        .iter()
        .flat_map(|p| &p.servers)
        .map(|s| Row {
            key: &s.key,
            state: &s.state,
            reason: &s.reason,
            last_check: s.last_check.as_deref(),
            last_check_duration_ms: s.last_check_duration_ms,
            seconds_in_state: s.seconds_in_state,
        })
        .collect();
    to_json(&rows)
}

pub fn events_text(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events".into();
    }
    let mut t = Table::new(&[("TIME", L), ("SERVER", L), ("CHANGE", L), ("REASON", L)]);
    for e in events {
        t.row(vec![e.time.clone(), e.server.clone(), format!("{} -> {}", e.from, e.to), e.reason.clone()]);
    }
    t.render()
}

/// The events, oldest first, as an array of [`Event`].
pub fn events_json(events: &[Event]) -> String {
    to_json(events)
}

pub fn pools_text(pools: &[PoolStat]) -> String {
    let mut t = Table::new(&[
        ("POOL", L),
        ("STRATEGY", L),
        ("UP", R),
        ("SERVERS", R),
        ("STICKY", L),
        ("HEALTH CHECK", L),
        ("FAIL OPEN", L),
        ("PANIC", L),
    ]);
    for p in pools {
        t.row(vec![
            p.name.clone(),
            p.strategy.clone(),
            p.servers.iter().filter(|s| is_active(s)).count().to_string(),
            p.servers.len().to_string(),
            if p.sticky { p.sticky_cookie.clone().unwrap_or_else(|| "yes".into()) } else { "no".into() },
            p.health_check.clone().unwrap_or_else(|| "-".into()),
            yes_no(p.fail_open),
            yes_no(p.panic),
        ]);
    }
    t.render()
}

/// One object per pool: its settings, `up`/`total` server counts and server
/// names (the full per-server numbers are in `show stat json`).
pub fn pools_json(pools: &[PoolStat]) -> String {
    let rows: Vec<Value> = pools
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "strategy": p.strategy,
                "sticky": p.sticky,
                "sticky_cookie": p.sticky_cookie,
                "health_check": p.health_check,
                "fail_open": p.fail_open,
                "panic": p.panic,
                "up": p.servers.iter().filter(|s| is_active(s)).count(),
                "total": p.servers.len(),
                "servers": p.servers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(rows).to_string()
}

pub fn workers_text(workers: &[WorkerStat]) -> String {
    let mut t = Table::new(&[("CORE", R), ("CONN OPEN", R), ("CONN TOTAL", R), ("REQUESTS", R), ("ERRORS", R)]);
    for w in workers {
        t.row(vec![
            w.core.to_string(),
            w.connections_open.to_string(),
            w.connections_total.to_string(),
            w.requests.to_string(),
            w.errors.to_string(),
        ]);
    }
    t.render()
}

pub fn workers_json(workers: &[WorkerStat]) -> String {
    to_json(workers)
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    // Serialising plain snapshot structs cannot fail (no maps with non-string keys).
    serde_json::to_string(v).unwrap_or_else(|e| format!("error: json: {e}"))
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// `45s`, `3m12s`, `2h05m`, `3d04h`.
pub fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `512B`, `2.0K`, `5.0M`, `1.2G` (powers of 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}
const L: Align = Align::Left;
const R: Align = Align::Right;

/// Columns padded to their widest cell, two spaces apart; the last column is
/// not padded (it may hold free text).
struct Table {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[(&str, Align)]) -> Self {
        Table {
            align: header.iter().map(|(_, a)| *a).collect(),
            rows: vec![header.iter().map(|(h, _)| h.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        // One line per row whatever a reason or check message holds.
        self.rows.push(cells.into_iter().map(|c| c.replace(['\n', '\r'], " ")).collect());
    }

    fn render(&self) -> String {
        let mut widths = vec![0; self.align.len()];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let w = widths[i];
                match self.align[i] {
                    Align::Right => {
                        let _ = write!(line, "{cell:>w$}");
                    }
                    Align::Left if i + 1 == row.len() => line.push_str(cell),
                    Align::Left => {
                        let _ = write!(line, "{cell:<w$}");
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `show plugins`: one line per loaded plugin.
pub fn plugins_text(plugins: &[PluginStat]) -> String {
    if plugins.is_empty() {
        return "no plugins loaded".into();
    }
    let mut out = format!(
        "{:<20} {:<8} {:>4} {:>10} {:>10} {:>7} {:>6} {:>8} {:>9}  {:<16} {}\n",
        "PLUGIN", "STATE", "GEN", "CALLS", "PLANNED", "ERRORS", "TRAPS", "TIMEOUTS", "AVG NS", "HASH", "FILE"
    );
    for p in plugins {
        out.push_str(&format!(
            "{:<20} {:<8} {:>4} {:>10} {:>10} {:>7} {:>6} {:>8} {:>9}  {:<16} {}\n",
            p.name,
            format!("{:?}", p.state).to_lowercase(),
            p.generation,
            p.calls,
            p.planned,
            p.errors,
            p.traps,
            p.timeouts,
            p.avg_call_ns,
            p.hash.get(..16).unwrap_or(&p.hash),
            p.file
        ));
        if let Some(e) = &p.last_error {
            out.push_str(&format!("  last error: {e}\n"));
        }
    }
    out.pop();
    out
}

/// `show plugins json`: the array of plugin records.
pub fn plugins_json(plugins: &[PluginStat]) -> String {
    serde_json::to_string(plugins).unwrap_or_else(|e| format!("error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fake::FakeControl;
    use crate::control::ControlApi;

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    #[test]
    fn stat_text_one_aligned_line_per_server() {
        let api = FakeControl::default();
        let out = stat_text(&api.pools());
        let l = lines(&out);
        assert_eq!(l.len(), 4, "{out}");
        assert!(l[0].starts_with("SERVER"), "{out}");
        assert!(l[1].starts_with("web/s1 "), "{out}");
        assert!(l[2].starts_with("web/s2 "), "{out}");
        assert!(l[3].starts_with("api/a1 "), "{out}");
        // Aligned: the STATE column starts at the same offset on every line.
        let col = l[0].find("STATE").unwrap();
        assert!(l[1..].iter().all(|x| x[col..].starts_with(['u', 'd'])), "{out}");
        for want in
            ["10/10", "0/10", "1234", "1200", "2.0K", "5.0M", "1.5ms", "1h02m", "ok: HTTP 200", "failed: HTTP 503"]
        {
            assert!(out.contains(want), "{want} missing in\n{out}");
        }
        assert!(!out.contains("\n\n"));
    }

    #[test]
    fn stat_json_carries_old_status_fields() {
        let api = FakeControl::default();
        let v: Value = serde_json::from_str(&stat_json(&api.info(), &api.pools())).unwrap();
        assert_eq!(v["uptime"], 90);
        assert_eq!(v["active_nodes"], json!(["http://10.0.0.1:80", "http://api-1.internal:8080"]));
        let web = &v["pools"][0];
        assert_eq!(web["name"], "web");
        assert_eq!(web["algorithm"], "round_robin");
        assert_eq!(web["sticky_sessions"], true);
        assert_eq!(v["pools"][1]["sticky_sessions"], false);
        assert_eq!(web["servers"][1]["key"], "web/s2");
        assert_eq!(web["servers"][1]["state"], "down");
        assert_eq!(web["servers"][0]["responses"], json!([0, 1200, 10, 20, 4]));
        assert_eq!(web["servers"][0]["ewma_latency_us"], 1500);
    }

    #[test]
    fn json_answers_are_single_lines() {
        let api = FakeControl::default();
        let (info, pools) = (api.info(), api.pools());
        for out in [
            info_json(&info),
            stat_json(&info, &pools),
            health_json(&pools),
            events_json(&api.events(50)),
            pools_json(&pools),
            workers_json(&api.workers()),
        ] {
            assert!(!out.contains('\n'), "{out}");
            let _: Value = serde_json::from_str(&out).unwrap();
        }
    }

    #[test]
    fn info_text_and_json() {
        let info = FakeControl::default().info();
        let out = info_text(&info);
        assert!(out.contains("version:") && out.contains("0.1.0"), "{out}");
        assert!(out.contains("uptime:") && out.contains("1m30s"), "{out}");
        assert!(out.contains("config:") && out.contains("lb.toml"), "{out}");
        let v: Value = serde_json::from_str(&info_json(&info)).unwrap();
        assert_eq!(v["pid"], 4242);
        assert_eq!(v["requests_total"], 2468);
    }

    #[test]
    fn health_events_pools_workers() {
        let api = FakeControl::default();
        let pools = api.pools();
        let h = health_text(&pools);
        assert!(h.contains("web/s2") && h.contains("health check: HTTP 503") && h.contains("1.2"), "{h}");
        let v: Value = serde_json::from_str(&health_json(&pools)).unwrap();
        assert_eq!(v[1]["key"], "web/s2");
        assert_eq!(v[1]["reason"], "health check: HTTP 503");
        assert_eq!(v[0]["last_check_duration_ms"], 1.25);

        let e = events_text(&api.events(1));
        assert_eq!(lines(&e).len(), 2, "{e}");
        assert!(e.contains("web/s1") && e.contains("up -> drain"), "{e}");
        assert_eq!(events_text(&[]), "no events");
        let v: Value = serde_json::from_str(&events_json(&api.events(50))).unwrap();
        assert_eq!(v[0]["to"], "down");

        let p = pools_text(&pools);
        assert!(p.contains("round_robin") && p.contains("FASTLB_SERVER") && p.contains("least_connections"), "{p}");
        let v: Value = serde_json::from_str(&pools_json(&pools)).unwrap();
        assert_eq!(v[0]["up"], 1);
        assert_eq!(v[0]["total"], 2);
        assert_eq!(v[0]["servers"], json!(["s1", "s2"]));

        let w = workers_text(&api.workers());
        assert_eq!(lines(&w).len(), 3, "{w}");
        let v: Value = serde_json::from_str(&workers_json(&api.workers())).unwrap();
        assert_eq!(v[1]["core"], 1);
    }

    #[test]
    fn command_results() {
        assert_eq!(command_result(Ok("web/s1: drained".into())), "web/s1: drained");
        assert_eq!(command_result(Ok(String::new())), "ok");
        assert_eq!(command_result(Err(CommandError("no server 'x/y'".into()))), "error: no server 'x/y'");
    }

    #[test]
    fn units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m01s");
        assert_eq!(duration(3725), "1h02m");
        assert_eq!(duration(90_000), "1d01h");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(2048), "2.0K");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0M");
    }

    #[test]
    fn table_cells_stay_on_one_line() {
        let mut t = Table::new(&[("A", L), ("B", L)]);
        t.row(vec!["x".into(), "two\nlines\r".into()]);
        assert_eq!(t.render(), "A  B\nx  two lines\n");
    }
}
