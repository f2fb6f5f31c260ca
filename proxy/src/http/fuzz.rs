//! Property tests for the parsers, written to be run long as a fuzzer:
//!
//!     PROPTEST_CASES=200000 cargo test --release -p fastlb --lib http::fuzz
//!
//! The case count is left to proptest's default (256, or `PROPTEST_CASES`)
//! so ordinary test runs stay quick.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use proptest::sample::select;

use super::*;

// ---- chunked ----

/// One chunk: data, extension text (may be empty), uppercase hex.
type ChunkSpec = (Vec<u8>, String, bool);

fn chunk_spec() -> impl Strategy<Value = ChunkSpec> {
    (
        prop::collection::vec(any::<u8>(), 1..300),
        prop_oneof![Just(String::new()), "(;[a-z]{1,6}(=[a-z0-9]{1,6})?){1,3}", " ;q=\"[a-z; ]{0,8}\"",],
        any::<bool>(),
    )
}

fn trailer_spec() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..4)
}

/// Encodes chunks and trailers; returns (encoding, data, trailer section).
fn encode(chunks: &[ChunkSpec], trailers: &[(String, String)]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (mut enc, mut data, mut tsec) = (Vec::new(), Vec::new(), Vec::new());
    for (d, ext, upper) in chunks {
        let size = if *upper { format!("{:X}", d.len()) } else { format!("{:x}", d.len()) };
        enc.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
        enc.extend_from_slice(d);
        enc.extend_from_slice(b"\r\n");
        data.extend_from_slice(d);
    }
    enc.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        tsec.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    enc.extend_from_slice(&tsec);
    enc.extend_from_slice(b"\r\n");
    (enc, data, tsec)
}

/// Feeds `input` to a decoder in pieces cut at `cuts` (positions, any
/// order), like a connection reading into a buffer and consuming what the
/// decoder took. Returns (data, trailers, consumed, done) or the error.
fn feed(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Vec<u8>, usize, bool), HttpError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut d = ChunkedDecoder::new();
    let (mut data, mut trailers, mut ends) = (Vec::new(), Vec::new(), 0);
    let mut pos = 0;
    for cut in cuts {
        if cut <= pos {
            continue;
        }
        let n = d.decode(&input[pos..cut], &mut |c| match c {
            Chunk::Data(b) => data.extend_from_slice(b),
            Chunk::Trailers(b) => trailers.extend_from_slice(b),
            Chunk::End => ends += 1,
        })?;
        assert!(n <= cut - pos);
        pos += n;
        if d.is_done() {
            break;
        }
        // Not done: everything offered must have been consumed.
        assert_eq!(pos, cut);
    }
    assert_eq!(ends, usize::from(d.is_done()));
    Ok((data, trailers, pos, d.is_done()))
}

proptest! {
    #[test]
    fn chunked_any_split_yields_the_body(
        chunks in prop::collection::vec(chunk_spec(), 0..8),
        trailers in trailer_spec(),
        suffix in prop::collection::vec(any::<u8>(), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let (enc, want, tsec) = encode(&chunks, &trailers);
        let mut input = enc.clone();
        input.extend_from_slice(&suffix);
        let (data, trl, consumed, done) = feed(&input, &cuts).unwrap();
        prop_assert!(done);
        prop_assert_eq!(consumed, enc.len());
        prop_assert_eq!(data, want);
        prop_assert_eq!(trl, tsec);
    }

    #[test]
    fn chunked_random_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let _ = feed(&input, &cuts);
    }

    #[test]
    fn chunked_mutations_never_panic(
        chunks in prop::collection::vec(chunk_spec(), 1..4),
        trailers in trailer_spec(),
        muts in prop::collection::vec((any::<usize>(), interesting_byte()), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let (mut enc, want, _) = encode(&chunks, &trailers);
        for (at, b) in muts {
            let at = at % enc.len();
            enc[at] = b;
        }
        if let Ok((data, _, _, true)) = feed(&enc, &cuts) {
            // A mutation that still decodes can only change data bytes or
            // sizes; the decoder never invents more data than it was given.
            prop_assert!(data.len() <= enc.len());
            let _ = want;
        }
    }
}

// ---- heads ----

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![select(vec![b'\r', b'\n', b' ', b'\t', b':', b',', b';', 0, 0x7f, 0x80, b'/', b'0', b'1']), any::<u8>(),]
}

/// Field names that change parsing; generated extra fields avoid them so the
/// expected result is known.
const SPECIAL: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "expect",
    "te",
    "keep-alive",
    "proxy-connection",
];

#[derive(Debug, Clone)]
struct ReqSpec {
    method: String,
    target: String,
    minor: u8,
    fields: Vec<(String, String)>,
    /// None, Some(Some(n)) = Content-Length n, Some(None) = chunked.
    framing: Option<Option<u64>>,
    host: String,
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    let method = prop_oneof![
        select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]).prop_map(String::from),
        "[A-Z]{1,10}".prop_filter("not CONNECT", |m| m != "CONNECT"),
    ];
    let target = prop_oneof![
        "/[A-Za-z0-9._~!$&'()*+,;=:@/-]{0,60}(\\?[A-Za-z0-9=&/?%]{0,30})?".prop_map(|t| t.replace('%', "%2F")),
        "http://[a-z]{1,10}(\\.[a-z]{2,5})?(:[0-9]{1,5})?(/[a-z0-9/]{0,20})?(\\?[a-z=]{0,10})?",
    ];
    let name = "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}"
        .prop_filter("special field", |n| !SPECIAL.contains(&n.to_ascii_lowercase().as_str()));
    let value = "([!-~\u{80}-\u{ff}]([ -~\t]{0,30}[!-~])?)?";
    let framing = prop_oneof![Just(None), (0u64..1_000_000).prop_map(|n| Some(Some(n))), Just(Some(None)),];
    (method, target, 0u8..2, prop::collection::vec((name, value), 0..12), framing, "[a-z0-9.-]{1,20}(:[0-9]{1,5})?")
        .prop_map(|(method, target, minor, fields, framing, host)| ReqSpec {
            method,
            target,
            minor,
            fields,
            // HTTP/1.0 cannot carry Transfer-Encoding.
            framing: if minor == 0 && framing == Some(None) { None } else { framing },
            host,
        })
}

fn build(spec: &ReqSpec) -> Vec<u8> {
    // Values are generated as strings of chars < 0x100; send them as bytes
    // so obs-text is exercised.
    let latin1 = |s: &str| s.chars().map(|c| c as u32 as u8).collect::<Vec<u8>>();
    let mut out = format!("{} {} HTTP/1.{}\r\n", spec.method, spec.target, spec.minor).into_bytes();
    out.extend_from_slice(format!("Host: {}\r\n", spec.host).as_bytes());
    for (n, v) in &spec.fields {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&latin1(v));
        out.extend_from_slice(b"\r\n");
    }
    match spec.framing {
        Some(Some(n)) => out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes()),
        Some(None) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        None => {}
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The forwarded head of anything we accept must be accepted by us too.
fn forward_reparses(buf: &[u8], head: &RequestHead) {
    let opts = ForwardOpts { default_host: Some(b"backend"), ..ForwardOpts::new(IpAddr::V4(Ipv4Addr::LOCALHOST)) };
    let mut out = Vec::new();
    write_request_head(buf, head, &opts, &mut out);
    let lim = Limits { max_head_size: usize::MAX, max_headers: 10_000, max_uri_length: usize::MAX };
    let again = parse_request(&out, &lim);
    assert!(
        matches!(again, Ok(Some(ref h)) if h.head_len == out.len() && h.body == head.body),
        "{:?} -> {:?}: {again:?}",
        String::from_utf8_lossy(buf),
        String::from_utf8_lossy(&out)
    );
}

proptest! {
    #[test]
    fn valid_heads_parse_the_same_at_any_split(
        spec in req_spec(),
        body in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let head = build(&spec);
        let lim = Limits::default();
        let mut full = head.clone();
        full.extend_from_slice(&body);
        let parsed = parse_request(&full, &lim).unwrap().unwrap();
        prop_assert_eq!(parsed.head_len, head.len());
        prop_assert_eq!(parsed.minor_version, spec.minor);
        prop_assert_eq!(parsed.method_range.get(&full), spec.method.as_bytes());
        prop_assert_eq!(parsed.target.get(&full), spec.target.as_bytes());
        prop_assert_eq!(parsed.headers.len(), spec.fields.len() + 1 + usize::from(spec.framing.is_some()));
        let want_body = match spec.framing {
            None => BodyKind::None,
            Some(Some(n)) => BodyKind::Length(n),
            Some(None) => BodyKind::Chunked,
        };
        prop_assert_eq!(parsed.body, want_body);
        for k in 0..head.len() {
            prop_assert_eq!(parse_request(&full[..k], &lim), Ok(None), "prefix {}", k);
        }
        prop_assert_eq!(parse_request(&head, &lim).unwrap().unwrap(), parsed.clone());
        forward_reparses(&full, &parsed);
    }

    #[test]
    fn random_heads_never_panic(input in prop::collection::vec(any::<u8>(), 0..400)) {
        let lim = Limits { max_head_size: 300, max_headers: 8, max_uri_length: 50 };
        if let Ok(Some(h)) = parse_request(&input, &lim) {
            prop_assert!(h.head_len <= 300 && h.head_len <= input.len());
            forward_reparses(&input, &h);
        }
        let _ = parse_response(&input, &lim, &Method::Get);
    }

    #[test]
    fn mutated_heads_never_panic(
        spec in req_spec(),
        muts in prop::collection::vec((any::<usize>(), interesting_byte(), 0u8..3), 1..5),
    ) {
        let mut buf = build(&spec);
        for (at, b, op) in muts {
            let at = at % (buf.len() + 1);
            match op {
                0 if at < buf.len() => buf[at] = b,
                1 => buf.insert(at, b),
                _ if at < buf.len() => { buf.remove(at); }
                _ => {}
            }
        }
        let lim = Limits::default();
        let res = parse_request(&buf, &lim);
        if let Ok(Some(h)) = &res {
            prop_assert!(h.head_len <= buf.len());
            for hd in &h.headers {
                prop_assert!(hd.value.end as usize <= h.head_len);
            }
            forward_reparses(&buf, h);
            // Whatever we accept, every prefix is "incomplete", never an error.
            for k in 0..h.head_len {
                prop_assert_eq!(parse_request(&buf[..k], &lim), Ok(None));
            }
        }
        // Response parsing on the same bytes, and on a status line in front.
        let _ = parse_response(&buf, &lim, &Method::Head);
        let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
        if let Some(p) = buf.iter().position(|&b| b == b'\n') {
            resp.extend_from_slice(&buf[p + 1..]);
        }
        if let Ok(Some(r)) = parse_response(&resp, &lim, &Method::Get) {
            let mut out = Vec::new();
            write_response_head(&resp, &r, &ResponseOpts { client_minor: 0, close: false, extra: b"" }, &mut out);
            let again = parse_response(&out, &lim, &Method::Get);
            prop_assert!(matches!(again, Ok(Some(_))), "{:?}", String::from_utf8_lossy(&out));
        }
    }
}
