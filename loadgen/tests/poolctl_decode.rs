//! Runs the built `poolctl` binary: `decode` on arguments and on stdin, its
//! JSON, and its exit status and error line for malformed input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const POOLCTL: &str = env!("CARGO_BIN_EXE_poolctl");

// wire/tests/spec_examples.rs, s12_1 (Registration) and s12_4 (Handle
// Resolution Response with two PEs), s12_5 (Presence).
const REGISTRATION: &str = "01 00 00 3c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0a 00 28 1a 2b 3c 4d 00 00 00 00 \
     00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08 00 00 00 01";
const HRR: &str = "06 00 00 74 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 08 00 08 00 00 00 01 00 0a 00 28 \
     1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08 \
     00 00 00 01 00 0a 00 30 5e 6f 70 81 11 22 33 44 00 00 01 2c 00 04 00 18 1b 58 00 00 00 01 00 08 \
     c0 00 02 0b 00 01 00 08 c6 33 64 0b 00 08 00 08 00 00 00 01";
const PRESENCE: &str = "01 00 00 2c 11 22 33 44 00 00 00 00 00 0f 00 06 56 72 00 00 00 0b 00 18 11 22 33 44 00 04 00 10 \
     26 ad 00 00 00 01 00 08 c0 00 02 01";

fn poolctl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(POOLCTL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("poolctl starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes())
            .expect("stdin accepts input");
    }
    drop(pipe);
    child.wait_with_output().expect("poolctl finishes")
}

fn objects(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8 errors")
}

#[test]
fn decodes_arguments_one_object_per_line() {
    let out = poolctl(
        &[
            "decode",
            REGISTRATION,
            &format!("0x{}", HRR.replace(' ', "")),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty());
    let v = objects(&out);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["type"], "ASAP_REGISTRATION");
    assert_eq!(v[0]["code"], 1);
    assert_eq!(v[0]["pool_handle"]["text"], "EchoService");
    assert_eq!(v[0]["pool_element"]["pe_id"], "0x1a2b3c4d");
    assert_eq!(v[0]["pool_element"]["registration_life"], 300);
    assert_eq!(
        v[0]["pool_element"]["user_transport"]["addresses"][0],
        "192.0.2.10"
    );
    assert_eq!(v[1]["type"], "ASAP_HANDLE_RESOLUTION_RESPONSE");
    assert_eq!(v[1]["flags"]["accept"], false);
    assert_eq!(v[1]["pool_elements"].as_array().unwrap().len(), 2);
    assert_eq!(v[1]["pool_elements"][1]["pe_id"], "0x5e6f7081");
}

#[test]
fn colons_are_accepted() {
    let colon = "07:01:00:17:11:22:33:44:00:09:00:0f:45:63:68:6f:53:65:72:76:69:63:65:00";
    let out = poolctl(&["decode", colon], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = objects(&out);
    assert_eq!(v[0]["type"], "ASAP_ENDPOINT_KEEP_ALIVE");
    assert_eq!(v[0]["flags"]["home"], true);
    assert_eq!(v[0]["server_id"], "0x11223344");
}

#[test]
fn reads_stdin_when_no_arguments() {
    let input = format!("{PRESENCE}\n\n# a comment line\n02 01 00 0c 55 66 77 88 11 22 33 44\n");
    for flag in [&["--enrp"][..], &["--protocol", "enrp"][..]] {
        let mut args = vec!["decode"];
        args.extend_from_slice(flag);
        let out = poolctl(&args, Some(&input));
        assert!(out.status.success(), "{}", stderr(&out));
        let v = objects(&out);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["type"], "ENRP_PRESENCE");
        assert_eq!(v[0]["sender_server_id"], "0x11223344");
        assert_eq!(v[0]["pe_checksum"], "0x5672");
        assert_eq!(v[1]["type"], "ENRP_HANDLE_TABLE_REQUEST");
        assert_eq!(
            v[1]["flags"],
            serde_json::json!({"raw": 1, "own_children_only": true})
        );
    }
}

#[test]
fn pretty_output_is_indented_json() {
    let out = poolctl(&["decode", "--pretty", REGISTRATION], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 10);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "ASAP_REGISTRATION");
}

#[test]
fn truncated_message_fails_after_the_other_inputs() {
    // The registration cut after 30 bytes, between two good messages.
    let cut: String = REGISTRATION.replace(' ', "")[..60].to_owned();
    let out = poolctl(&["decode", REGISTRATION, &cut, REGISTRATION], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(objects(&out).len(), 2, "the good inputs are still decoded");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("poolctl decode: argument 2: "), "{err}");
    assert!(err.contains("message: truncated"), "{err}");
    assert!(err.contains("Invalid Values (0x0003)"), "{err}");
}

#[test]
fn truncated_parameter_names_the_field() {
    // The PE Identifier claims 8 bytes but the message (length 0x1a) ends after 6.
    let out = poolctl(
        &[
            "decode",
            "08 00 00 1a 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("PE Identifier: truncated"), "{err}");
    assert!(err.contains("cause: Invalid Values (0x0003)"), "{err}");
}

#[test]
fn bad_hex_on_stdin_names_the_line() {
    let input = format!("{REGISTRATION}\n01 00 0g\n");
    let out = poolctl(&["decode"], Some(&input));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(objects(&out).len(), 1);
    let err = stderr(&out);
    assert!(err.starts_with("poolctl decode: line 2: bad hex"), "{err}");
    assert!(err.contains("'g'"), "{err}");

    let out = poolctl(&["decode", "abc"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("argument 1: bad hex: odd number of digits"));
}

#[test]
fn unknown_message_type_maps_to_its_cause() {
    // 0x4f: action bits 01, report Unrecognized Message; 0x3f: discard silently.
    let out = poolctl(&["decode", "4f 00 00 04", "3f 00 00 04"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("argument 1"), "{err}");
    assert!(
        lines[0].contains("ASAP message type: unrecognized message type"),
        "{err}"
    );
    assert!(lines[0].contains("Unrecognized Message (0x0002)"), "{err}");
    assert!(lines[1].contains("argument 2"), "{err}");
    assert!(lines[1].contains("discards it silently"), "{err}");

    let out = poolctl(
        &["decode", "--enrp", "0b 00 00 0c 00 00 00 01 00 00 00 02"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ENRP message type: unrecognized message type"));
}

#[test]
fn usage_errors_exit_2() {
    let out = poolctl(&["decode", "--protocol", "sip", "00"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = poolctl(&["decode", "--enrp", "--protocol", "asap", "00"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = poolctl(&["frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
}
