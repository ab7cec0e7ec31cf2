//! The serving side answers every request line, including bad ones, with a clear error, and keeps
//! serving (`spec/9-wire.md`, "Errors").

use std::io::Cursor;

use dmaconf_platform::{DmaApi, Platform, PlatformFacts};
use dmaconf_wire::message::{Facts, Message};
use dmaconf_wire::{serve, Served};

/// Serves `input` (one request per line) with `make`; returns the server's lines.
fn session(input: &[String], make: &dyn Fn() -> Box<dyn DmaApi>) -> Vec<Message> {
    let caps = vec!["iova_api".to_string()];
    let served = Served {
        name: "test",
        version: "0",
        capabilities: &caps,
        make,
    };
    let mut out = Vec::new();
    serve(Cursor::new(input.concat()), &mut out, &served).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| Message::parse(l).unwrap())
        .collect()
}

fn reference() -> Box<dyn DmaApi> {
    Box::new(dmaconf_reference::Reference::new())
}

fn create(id: u64) -> String {
    Message {
        id: Some(id),
        facts: Some(Facts::from(PlatformFacts::default())),
        ..Message::request("create")
    }
    .line()
}

fn error_code(m: &Message) -> &str {
    m.error.as_ref().map_or("", |e| e.code.as_str())
}

#[test]
fn hello_names_the_implementation_and_checks_the_version() {
    let lines = [
        "{\"id\":1,\"call\":\"hello\",\"protocol\":1}\n".to_string(),
        "{\"id\":2,\"call\":\"hello\",\"protocol\":99}\n".to_string(),
    ];
    let out = session(&lines, &reference);
    assert_eq!(out[0].protocol, Some(1));
    assert_eq!(out[0].name.as_deref(), Some("test"));
    assert_eq!(out[0].capabilities, Some(vec!["iova_api".to_string()]));
    assert_eq!(error_code(&out[1]), "version");
    assert_eq!(out[1].id, Some(2));
}

#[test]
fn bad_requests_get_errors_and_the_session_goes_on() {
    let lines = [
        "not json\n".to_string(),
        "{\"id\":1}\n".to_string(),
        "{\"id\":2,\"call\":\"frobnicate\"}\n".to_string(),
        "{\"id\":3,\"call\":\"probe\",\"dev\":7}\n".to_string(),
        "{\"id\":4,\"call\":\"create\"}\n".to_string(),
        create(5),
        "{\"id\":6,\"call\":\"iova_try_alloc\",\"dev\":1,\"phys\":0}\n".to_string(),
        "{\"id\":7,\"call\":\"use_iova\",\"dev\":1,\"state\":{\"addr\":0,\"size\":4096}}\n"
            .to_string(),
        "{\"id\":8,\"call\":\"destroy\",\"dev\":1}\n".to_string(),
        "{\"id\":9,\"call\":\"destroy\",\"dev\":1}\n".to_string(),
        "{\"id\":10,\"call\":\"shutdown\"}\n".to_string(),
        "{\"id\":11,\"call\":\"hello\",\"protocol\":1}\n".to_string(),
    ];
    let out = session(&lines, &reference);
    let codes: Vec<&str> = out.iter().map(error_code).collect();
    assert_eq!(
        codes,
        [
            "malformed",
            "malformed",
            "unknown_method",
            "bad_request",
            "bad_request",
            "",
            "bad_request",
            "",
            "",
            "bad_request",
            "",
        ],
        "nothing is answered after shutdown"
    );
    assert_eq!(out[0].id, None);
    assert!(out[6].error.as_ref().unwrap().message.contains("`state`"));
    assert_eq!(out[5].dev, Some(1));
    assert_eq!(out[7].ret.and_then(|r| r.as_bool()), Some(true));
}

/// An implementation that panics in probe.
struct Panics;

impl DmaApi for Panics {
    fn probe(&mut self, _: &mut dyn Platform) -> i32 {
        panic!("probe exploded")
    }
    fn iova_try_alloc(
        &mut self,
        _: &mut dyn Platform,
        _: &mut dmaconf_platform::IovaState,
        _: u64,
        _: u64,
    ) -> bool {
        false
    }
    fn iova_link(
        &mut self,
        _: &mut dyn Platform,
        _: &mut dmaconf_platform::IovaState,
        _: u64,
        _: u64,
        _: u64,
        _: dmaconf_platform::Dir,
        _: dmaconf_platform::Attrs,
    ) -> i32 {
        0
    }
    fn iova_sync(
        &mut self,
        _: &mut dyn Platform,
        _: &dmaconf_platform::IovaState,
        _: u64,
        _: u64,
    ) -> i32 {
        0
    }
    fn iova_unlink(
        &mut self,
        _: &mut dyn Platform,
        _: &dmaconf_platform::IovaState,
        _: u64,
        _: u64,
        _: dmaconf_platform::Dir,
        _: dmaconf_platform::Attrs,
    ) {
    }
    fn iova_destroy(
        &mut self,
        _: &mut dyn Platform,
        _: &dmaconf_platform::IovaState,
        _: u64,
        _: dmaconf_platform::Dir,
        _: dmaconf_platform::Attrs,
    ) {
    }
    fn iova_free(&mut self, _: &mut dyn Platform, _: &dmaconf_platform::IovaState) {}
}

#[test]
fn a_panicking_call_is_answered_with_panic() {
    let lines = [
        create(1),
        "{\"id\":2,\"call\":\"probe\",\"dev\":1,\"cpu\":0,\"now_ns\":0}\n".to_string(),
    ];
    let out = session(&lines, &|| Box::new(Panics));
    assert_eq!(error_code(&out[1]), "panic");
    assert!(out[1]
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("probe exploded"));
}

#[test]
fn a_line_that_is_not_utf8_is_malformed_and_the_session_goes_on() {
    let caps = Vec::new();
    let make = reference;
    let served = Served {
        name: "test",
        version: "0",
        capabilities: &caps,
        make: &make,
    };
    let mut input = b"\xff\xfe not text\n".to_vec();
    input.extend_from_slice(b"{\"id\":1,\"call\":\"hello\",\"protocol\":1}\n");
    let mut out = Vec::new();
    serve(Cursor::new(input), &mut out, &served).unwrap();
    let out: Vec<Message> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| Message::parse(l).unwrap())
        .collect();
    assert_eq!(error_code(&out[0]), "malformed");
    assert_eq!(out[1].protocol, Some(1));
}
