//! Cookie-insert sticky sessions (`--sticky-sessions`, cookie FASTLB_SERVER).

mod support;

use support::{Backend, Proxy, Response, get, get_with};

/// The FASTLB_SERVER value from a response's Set-Cookie fields.
fn sticky_cookie(r: &Response) -> Option<String> {
    r.head.get_all("set-cookie").iter().find_map(|v| {
        let pair = v.split(';').next()?.trim();
        pair.strip_prefix("FASTLB_SERVER=").map(str::to_string)
    })
}

fn assert_opaque(value: &str, backends: &[&Backend]) {
    assert!(
        value.len() == 16 && value.chars().all(|c| c.is_ascii_hexdigit()),
        "cookie value should be 16 hex digits, got {value:?}"
    );
    for b in backends {
        let port = b.addr.port().to_string();
        assert!(
            !value.contains(&port) && !value.contains("127.0.0.1"),
            "cookie {value:?} reveals backend address {}",
            b.addr
        );
    }
}

#[test]
fn first_response_sets_an_opaque_cookie_and_it_pins_the_server() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Proxy::cli(&[&a, &b], &["--strategy", "round_robin", "--sticky-sessions"]);
    let first = get(proxy.addr, "/");
    assert_eq!(first.status, 200, "{first:?}");
    let cookie =
        sticky_cookie(&first).unwrap_or_else(|| panic!("no FASTLB_SERVER cookie on the first response: {first:?}"));
    assert_opaque(&cookie, &[&a, &b]);
    let pinned = first.backend().to_string();
    let header = format!("FASTLB_SERVER={cookie}");
    for i in 0..20 {
        let r = get_with(proxy.addr, "/", &[("Cookie", &header)]);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.backend(), pinned, "sticky request {i} left its server");
    }
    // Other cookies around it must not confuse the parser.
    let mixed = format!("theme=dark; FASTLB_SERVER={cookie}; lang=en");
    for _ in 0..4 {
        assert_eq!(get_with(proxy.addr, "/", &[("Cookie", &mixed)]).backend(), pinned);
    }
}

#[test]
fn a_dead_sticky_server_rebalances_the_client_with_a_new_cookie() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let proxy = Proxy::cli(&[&a, &b], &["--strategy", "round_robin", "--sticky-sessions"]);
    let first = get(proxy.addr, "/");
    let cookie = sticky_cookie(&first).expect("no FASTLB_SERVER cookie on the first response");
    let (dead, alive) = if first.backend() == "a" { (&a, &b) } else { (&b, &a) };
    dead.stop();
    let header = format!("FASTLB_SERVER={cookie}");
    let r = get_with(proxy.addr, "/", &[("Cookie", &header)]);
    assert_eq!(r.status, 200, "sticky client of a dead server: {r:?}");
    assert_eq!(r.backend(), alive.id, "re-balanced to the wrong server");
    let fresh = sticky_cookie(&r)
        .unwrap_or_else(|| panic!("re-balanced response should set a new FASTLB_SERVER cookie: {r:?}"));
    assert_ne!(fresh, cookie, "new cookie equals the dead server's");
    assert_opaque(&fresh, &[&a, &b]);
    let header = format!("FASTLB_SERVER={fresh}");
    for _ in 0..5 {
        let r = get_with(proxy.addr, "/", &[("Cookie", &header)]);
        assert_eq!((r.status, r.backend()), (200, alive.id.as_str()), "{r:?}");
    }
}
