//! The admin thread over a real Unix socket, with the fake control.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdStream;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::admin::ctl;
use crate::admin::fake::FakeControl;

/// A running admin thread on a fresh temp path; stopped (and checked to
/// have removed its socket) on drop.
struct Admin {
    path: PathBuf,
    api: Arc<FakeControl>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn temp_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("fastlb-admin-{}-{n}.sock", std::process::id()))
}

fn config(path: &Path, mode: u32) -> AdminConfig {
    AdminConfig { socket: path.to_path_buf(), mode }
}

impl Admin {
    fn start() -> Admin {
        Admin::start_at(temp_path(), 0o600).unwrap()
    }

    fn start_at(path: PathBuf, mode: u32) -> io::Result<Admin> {
        let api = Arc::new(FakeControl::default());
        let (tx, rx) = oneshot::channel();
        let thread = spawn_admin(&config(&path, mode), api.clone(), rx)?;
        Ok(Admin { path, api, stop: Some(tx), thread: Some(thread) })
    }

    fn connect(&self) -> Conn {
        let s = StdStream::connect(&self.path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { r: BufReader::new(s.try_clone().unwrap()), w: s }
    }

    /// One command on a fresh connection.
    fn ask(&self, line: &str) -> String {
        self.connect().ask(line)
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
            self.thread.take().unwrap().join().unwrap();
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Conn {
    r: BufReader<StdStream>,
    w: StdStream,
}

impl Conn {
    fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// One framed answer, without its terminating empty line.
    fn answer(&mut self) -> String {
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            assert!(self.r.read_line(&mut line).unwrap() > 0, "EOF mid-answer after {answer:?}");
            if line == "\n" {
                return answer;
            }
            answer.push_str(&line);
        }
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.answer()
    }

    /// The server closed (a reset, after it closed with our bytes unread, counts).
    fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn every_show_command_in_text_and_json() {
    let admin = Admin::start();
    let stat = admin.ask("show stat");
    assert!(stat.starts_with("SERVER") && stat.contains("web/s1") && stat.contains("api/a1"), "{stat}");
    assert!(admin.ask("show info").contains("pid:"));
    assert!(admin.ask("show health").contains("health check: HTTP 503"));
    assert!(admin.ask("show events").contains("up -> drain"));
    assert_eq!(admin.ask("show events 1").lines().count(), 2);
    assert!(admin.ask("show pools").contains("least_connections"));
    assert_eq!(admin.ask("show workers").lines().count(), 3);
    assert!(admin.ask("help").contains("drain server POOL/SERVER"));
    for cmd in ["info", "stat", "health", "events", "events 1", "pools", "workers"] {
        let answer = admin.ask(&format!("show {cmd} json"));
        assert_eq!(answer.lines().count(), 1, "{cmd}: {answer}");
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{cmd}: {e}: {answer}"));
        if cmd == "stat" {
            assert_eq!(v["active_nodes"][0], "http://10.0.0.1:80");
            assert_eq!(v["pools"][0]["algorithm"], "round_robin");
        }
    }
    assert!(admin.api.calls().is_empty());
}

#[test]
fn mutating_commands_reach_the_control() {
    let admin = Admin::start();
    let mut c = admin.connect();
    assert_eq!(c.ask("enable server web/s1"), "web/s1: enabled\n");
    assert_eq!(c.ask("disable server web/s1"), "web/s1: disabled (maint)\n");
    assert_eq!(c.ask("drain server web/s2"), "web/s2: draining\n");
    assert_eq!(c.ask("set weight web/s1 256"), "web/s1: weight 256\n");
    assert_eq!(c.ask("add server web/s9 app.internal:8080 backup"), "web/s9: added\n");
    assert_eq!(c.ask("del server web/s2"), "web/s2: deleted\n");
    assert_eq!(c.ask("reload"), "reloaded lb.toml (generation 2)\n");
    assert_eq!(c.ask("drain server web/ghost"), "error: no server 'web/ghost'\n");
    assert_eq!(
        admin.api.calls(),
        [
            "enable web/s1",
            "disable web/s1",
            "drain web/s2",
            "set_weight web/s1 256",
            "add web/s9 app.internal:8080 None true",
            "del web/s2",
            "reload"
        ]
    );
}

#[test]
fn bad_commands_change_nothing() {
    let admin = Admin::start();
    let mut c = admin.connect();
    for bad in [
        "set weight web/s1 300",
        "set weight web/s1",
        "add server web/s3 not-an-addr",
        "add server web/s3 10.0.0.3:80 weight 999",
        "enable server s1",
        "disable server web/s1 now",
        "del server",
        "reload everything",
        "frobnicate web/s1",
        "",
    ] {
        let answer = c.ask(bad);
        assert!(answer.starts_with("error: ") && answer.lines().count() == 1, "{bad:?}: {answer}");
    }
    assert_eq!(c.ask("frobnicate"), "error: unknown command 'frobnicate'; try 'help'\n");
    assert!(admin.api.calls().is_empty(), "{:?}", admin.api.calls());
}

#[test]
fn pipelined_commands_are_answered_in_order_then_quit_closes() {
    let admin = Admin::start();
    let mut c = admin.connect();
    c.w.write_all(b"show events 1 json\r\nset weight web/s1 3\nbogus\nquit\nreload\n").unwrap();
    let events: serde_json::Value = serde_json::from_str(&c.answer()).unwrap();
    assert_eq!(events[0]["server"], "web/s1");
    assert_eq!(c.answer(), "web/s1: weight 3\n");
    assert!(c.answer().starts_with("error: unknown command 'bogus'"));
    assert!(c.at_eof(), "quit must close without answering");
    assert_eq!(admin.api.calls(), ["set_weight web/s1 3"], "nothing after quit runs");
}

#[test]
fn last_line_without_newline_is_answered_at_eof() {
    let admin = Admin::start();
    let mut c = admin.connect();
    c.w.write_all(b"set weight web/s1 1").unwrap();
    c.w.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.answer(), "web/s1: weight 1\n");
    assert!(c.at_eof());
}

#[test]
fn overlong_line_is_refused_and_closes() {
    let admin = Admin::start();
    let mut c = admin.connect();
    c.w.write_all(&vec![b'a'; MAX_LINE + 100]).unwrap();
    assert_eq!(c.answer(), format!("error: line too long (max {MAX_LINE} bytes); closing\n"));
    assert!(c.at_eof());
    // A line at the limit is fine (and merely unknown).
    let long = format!("show {}", "x".repeat(MAX_LINE - 5));
    assert!(admin.ask(&long).starts_with("error: unknown command"));
}

#[test]
fn non_utf8_line_gets_an_error() {
    let admin = Admin::start();
    let mut c = admin.connect();
    c.w.write_all(b"show \xff\n").unwrap();
    assert_eq!(c.answer(), "error: command is not UTF-8\n");
    assert_eq!(c.ask("show events 1").lines().count(), 2, "connection still usable");
}

#[test]
fn socket_mode_is_applied() {
    let admin = Admin::start();
    let mode = std::fs::metadata(&admin.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o600, "{mode:o}");

    let wider = Admin::start_at(temp_path(), 0o660).unwrap();
    let mode = std::fs::metadata(&wider.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o660, "{mode:o}");
}

#[test]
fn second_instance_on_same_path_is_refused() {
    let admin = Admin::start();
    let (_tx, rx) = oneshot::channel();
    let err = spawn_admin(&config(&admin.path, 0o600), Arc::new(FakeControl::default()), rx).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert_eq!(err.to_string(), format!("admin socket {} is in use by another process", admin.path.display()));
    // The first instance is untouched.
    assert!(admin.ask("show info").contains("pid:"));
}

#[test]
fn stale_socket_file_is_replaced() {
    let path = temp_path();
    drop(StdUnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
    assert!(path.exists());
    let admin = Admin::start_at(path, 0o600).unwrap();
    assert!(admin.ask("show workers").contains("CORE"));
}

#[test]
fn non_socket_file_is_left_alone() {
    let path = temp_path();
    std::fs::write(&path, "precious").unwrap();
    let (_tx, rx) = oneshot::channel();
    let err = spawn_admin(&config(&path, 0o600), Arc::new(FakeControl::default()), rx).unwrap_err();
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn stop_removes_the_socket_and_closes_connections() {
    let mut admin = Admin::start();
    let mut c = admin.connect();
    assert!(c.ask("show info").contains("pid:"));
    admin.stop();
    assert!(!admin.path.exists());
    assert!(c.at_eof());
    assert!(StdStream::connect(&admin.path).is_err());
}

#[test]
fn dropped_stop_sender_also_stops() {
    let path = temp_path();
    let (tx, rx) = oneshot::channel::<()>();
    let thread = spawn_admin(&config(&path, 0o600), Arc::new(FakeControl::default()), rx).unwrap();
    drop(tx);
    thread.join().unwrap();
    assert!(!path.exists());
}

#[test]
fn ctl_one_shot_and_stdin() {
    let admin = Admin::start();
    let run = |words: &[&str], json: bool, input: &str| {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = ctl::run_with(&admin.path, &words, json, false, &mut input.as_bytes(), &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    };

    let (code, out, _) = run(&["show", "stat"], false, "");
    assert_eq!(code, 0);
    assert!(out.starts_with("SERVER") && !out.ends_with("\n\n"), "{out}");

    let (code, out, _) = run(&["show", "stat"], true, "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["uptime"], 90);

    let (code, out, err) = run(&["set", "weight", "web/s1", "300"], false, "");
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "error: bad weight '300': expected 0-256\n");

    let (code, out, _) = run(&["set", "weight", "web/s1", "9"], true, "");
    assert_eq!((code, out.as_str()), (0, "web/s1: weight 9\n"));

    let (code, out, _) = run(&[], false, "# comment\n\nshow events 1\nset weight web/s1 4\n");
    assert_eq!(code, 0);
    let answers: Vec<&str> = out.split_terminator("\n\n").collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert_eq!(answers[1], "web/s1: weight 4");

    let (code, out, _) = run(&[], true, "show workers\nbogus\nshow info\n");
    assert_eq!(code, 1, "one failed answer fails the run");
    assert_eq!(out.split_terminator("\n\n").count(), 3, "{out}");

    let (code, _, _) = run(&[], false, "show info\nquit\nreload\n");
    assert_eq!(code, 0);
    assert_eq!(admin.api.calls(), ["set_weight web/s1 9", "set_weight web/s1 4"]);
}

#[test]
fn bind_errors_name_the_path() {
    let path = PathBuf::from("/nonexistent-dir/fastlb.sock");
    let (_tx, rx) = oneshot::channel();
    let err = spawn_admin(&config(&path, 0o600), Arc::new(FakeControl::default()), rx).unwrap_err();
    assert!(err.to_string().starts_with("admin socket /nonexistent-dir/fastlb.sock: "), "{err}");
    let long = std::env::temp_dir().join("x".repeat(120));
    let (_tx, rx) = oneshot::channel();
    let err = spawn_admin(&config(&long, 0o600), Arc::new(FakeControl::default()), rx).unwrap_err();
    assert!(err.to_string().contains(&*long.to_string_lossy()), "{err}");
}
