//! Active health checks and agent checks, on a thread of their own.
//!
//! - [`probe`]: one check against one server (HTTP, TCP, Redis, PostgreSQL)
//!   or one agent query, bounded by the check's timeout.
//! - [`state`]: the fall/rise machine that turns check results into health
//!   changes (HAProxy semantics).
//! - [`checker`]: the "fastlb-health" thread: follows the published backend
//!   table, runs one task per checked server and reports to a
//!   [`HealthSink`](crate::control::HealthSink).
//!
//! Probes never run on a data-path core: they block on the network for up to
//! a timeout, and their results only matter once the control side has
//! rebuilt and swapped the table.

pub mod checker;
pub mod probe;
pub mod state;

#[cfg(test)]
mod tests;

pub use checker::spawn_checker;
pub use probe::{ProbeOutcome, agent, parse_agent_line, probe};
pub use state::CheckState;

use crate::config::HealthCheckKind;

/// The check's name in reasons and logs ("http", "tcp", "redis", "pgsql").
pub fn kind_name(kind: &HealthCheckKind) -> &'static str {
    match kind {
        HealthCheckKind::Http { .. } => "http",
        HealthCheckKind::Tcp => "tcp",
        HealthCheckKind::Redis => "redis",
        HealthCheckKind::Pgsql { .. } => "pgsql",
    }
}
