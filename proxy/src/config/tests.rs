use super::*;
#[test]
fn smoke() {
    let c = parse("[[listener]]\nbind = \"127.0.0.1:8000\"\n[[pool]]\nname = \"app\"\n[[pool.server]]\naddr = \"127.0.0.1:5000\"\n", "lb.toml").unwrap();
    assert_eq!(c.listeners[0].pool, "app");
}
