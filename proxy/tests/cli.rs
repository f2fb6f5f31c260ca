//! The binary's command line: exit codes and messages users see first.
//! (Its presence also makes `cargo test --workspace` build the `fastlb`
//! binary that the top-level integration tests spawn.)

use std::process::Command;

fn fastlb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fastlb"))
}

#[test]
fn no_arguments_explains_what_to_run() {
    let out = fastlb().output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fastlb demo"), "{err}");
}

#[test]
fn check_accepts_the_example_config() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/lb.toml");
    let out = fastlb().args(["check", "-c", path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[test]
fn check_names_key_and_line_of_a_bad_config() {
    let dir = std::env::temp_dir().join(format!("fastlb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[listener]]\nbind = \"127.0.0.1:8000\"\npool = \"app\"\n\n[[pool]]\nname = \"app\"\nstrategy = \"fastest\"\n\n[[pool.server]]\naddr = \"127.0.0.1:5000\"\nweight = 300\n",
    )
    .unwrap();
    let out = fastlb().args(["check", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:7:"), "strategy error names line 7: {err}");
    assert!(err.contains("bad.toml:11:"), "weight error names line 11: {err}");
    assert!(err.contains("strategy") && err.contains("weight"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_strategy_flag_is_refused() {
    let out = fastlb()
        .args(["--listen", "127.0.0.1:0", "--backends", "127.0.0.1:1", "--strategy", "fastest"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown strategy"));
}

#[test]
fn address_in_use_is_a_clear_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = fastlb().args(["--listen", &addr, "--backends", "127.0.0.1:1", "--workers", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
}
