//! `fastlb ctl`: sends admin commands over the Unix socket and prints the
//! answers. Exit status: 0 all answers fine, 1 an answer was `error: …`,
//! 2 the socket could not be reached (or the config naming it not read).

use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::CtlArgs;
use crate::config::{self, DEFAULT_ADMIN_SOCKET};

pub const EXIT_OK: u8 = 0;
/// An answer started with `error:`.
pub const EXIT_FAILED: u8 = 1;
/// No socket to talk to.
pub const EXIT_UNREACHABLE: u8 = 2;

/// How long to wait for one answer (`reload` may take a while).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// `fastlb ctl [-s SOCKET] [-j] [COMMAND…]`; `config` is the global `-c FILE`.
pub fn run(args: &CtlArgs, config: Option<&Path>) -> ExitCode {
    let socket = match socket_path(args.socket.as_deref(), config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fastlb ctl: {e}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    let stdin = io::stdin();
    let prompt = args.words.is_empty() && stdin.is_terminal();
    let code = run_with(
        &socket,
        &args.words,
        args.json,
        prompt,
        &mut stdin.lock(),
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Which socket to use: `-s` > the `[admin] socket` of `-c FILE` > [`DEFAULT_ADMIN_SOCKET`].
pub fn socket_path(explicit: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(s) = explicit {
        return Ok(s.to_path_buf());
    }
    match config {
        Some(file) => config::load(file).map(|c| c.admin.socket).map_err(|e| format!("{e}")),
        None => Ok(PathBuf::from(DEFAULT_ADMIN_SOCKET)),
    }
}

/// One command from `words`, or (when empty) one per line of `input` (blank
/// lines and `#` comments skipped). One-shot answers print as they are, an
/// error answer to `err`; answers to `input` lines print to `out` with the
/// wire framing (each followed by an empty line). Returns the exit status.
pub fn run_with(
    socket: &Path,
    words: &[String],
    json: bool,
    prompt: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    if words.iter().any(|w| w.contains(['\n', '\r'])) {
        let _ = writeln!(err, "fastlb ctl: a command cannot contain line breaks");
        return EXIT_FAILED;
    }
    let mut client = match Client::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                err,
                "fastlb ctl: cannot connect to admin socket {}: {e}\n\
                 Is fastlb running with this admin socket? Name it with -s SOCKET, or -c FILE to use its [admin] socket.",
                socket.display()
            );
            return EXIT_UNREACHABLE;
        }
    };
    let broken = |err: &mut dyn Write, e: io::Error| {
        let _ = writeln!(err, "fastlb ctl: admin socket {}: {e}", socket.display());
        EXIT_UNREACHABLE
    };
    if !words.is_empty() {
        return match client.ask(&with_json(&words.join(" "), json)) {
            Ok(None) => EXIT_OK,
            Ok(Some(answer)) if answer.starts_with("error:") => {
                let _ = err.write_all(answer.as_bytes());
                EXIT_FAILED
            }
            Ok(Some(answer)) => {
                let _ = out.write_all(answer.as_bytes());
                EXIT_OK
            }
            Err(e) => broken(err, e),
        };
    }
    let mut code = EXIT_OK;
    loop {
        if prompt {
            let _ = write!(err, "> ");
            let _ = err.flush();
        }
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return code,
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(err, "fastlb ctl: reading commands: {e}");
                return EXIT_FAILED;
            }
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match client.ask(&with_json(line, json)) {
            Ok(None) => return code,
            Ok(Some(answer)) => {
                if answer.starts_with("error:") {
                    code = EXIT_FAILED;
                }
                let _ = out.write_all(answer.as_bytes());
                let _ = out.write_all(b"\n");
                let _ = out.flush();
            }
            Err(e) => return broken(err, e),
        }
    }
}

/// `-j`: ask for JSON by appending the word, unless it is already there.
fn with_json(command: &str, json: bool) -> String {
    if json && command.split_ascii_whitespace().last() != Some("json") {
        format!("{command} json")
    } else {
        command.to_string()
    }
}

struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(path: &Path) -> io::Result<Client> {
        let writer = UnixStream::connect(path)?;
        writer.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Client { reader: BufReader::new(writer.try_clone()?), writer })
    }

    /// Sends one command; returns its answer (lines with their `\n`, without
    /// the terminating empty line), or `None` when the server closed the
    /// connection without answering (`quit`).
    fn ask(&mut self, command: &str) -> io::Result<Option<String>> {
        self.writer.write_all(format!("{command}\n").as_bytes())?;
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return if answer.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-answer"))
                };
            }
            if line == "\n" {
                return Ok(Some(answer));
            }
            answer.push_str(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_forms() {
        use clap::Parser;
        let ctl = |args: &[&str]| match crate::cli::Cli::try_parse_from(args).unwrap() {
            crate::cli::Cli { command: Some(crate::cli::Command::Ctl(c)), config, .. } => (c, config),
            other => panic!("{other:?}"),
        };
        let (c, config) = ctl(&["fastlb", "ctl", "-s", "/x.sock", "-j", "show", "stat"]);
        assert_eq!(
            (c.socket.as_deref(), c.json, c.words.as_slice()),
            (Some(Path::new("/x.sock")), true, &["show".to_string(), "stat".to_string()][..])
        );
        assert_eq!(config, None);
        let (c, config) = ctl(&["fastlb", "-c", "lb.toml", "ctl", "set", "weight", "web/s1", "-5"]);
        assert_eq!(config.as_deref(), Some(Path::new("lb.toml")));
        assert_eq!(c.words.last().map(String::as_str), Some("-5"));
        assert!(!c.json);
        let (c, _) = ctl(&["fastlb", "ctl"]);
        assert!(c.words.is_empty() && c.socket.is_none());
    }

    #[test]
    fn json_flag_appends_once() {
        assert_eq!(with_json("show stat", true), "show stat json");
        assert_eq!(with_json("show stat json", true), "show stat json");
        assert_eq!(with_json("show stat", false), "show stat");
    }

    #[test]
    fn socket_precedence() {
        let dir = std::env::temp_dir().join(format!("fastlb-ctl-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("lb.toml");
        std::fs::write(
            &cfg,
            "[admin]\nsocket = \"/run/x.sock\"\n[[listener]]\nbind = \"127.0.0.1:8000\"\n[[pool]]\n[[pool.server]]\naddr = \"127.0.0.1:5000\"\n",
        )
        .unwrap();
        assert_eq!(socket_path(Some(Path::new("/a.sock")), Some(&cfg)), Ok(PathBuf::from("/a.sock")));
        assert_eq!(socket_path(None, Some(&cfg)), Ok(PathBuf::from("/run/x.sock")));
        assert_eq!(socket_path(None, None), Ok(PathBuf::from(DEFAULT_ADMIN_SOCKET)));
        assert!(socket_path(None, Some(&dir.join("missing.toml"))).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unreachable_socket_exits_2_naming_it() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let path = Path::new("/nonexistent/fastlb-ctl.sock");
        let code = run_with(path, &["show".into(), "info".into()], false, false, &mut &b""[..], &mut out, &mut err);
        assert_eq!(code, EXIT_UNREACHABLE);
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("/nonexistent/fastlb-ctl.sock") && err.contains("-s SOCKET"), "{err}");
    }
}
