//! One focused test per validation class: the decoder's `ErrorKind`, the
//! field it names, the Operation Error cause it maps to (`Error::cause`) and,
//! where the RFC wants them echoed, the offending bytes; then the encoder's
//! refusals (`EncodeError`).
//!
//! Malformed messages are built with the crate's own `Writer`, which keeps
//! every length consistent, so each test breaks exactly one rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rserpool_wire::asap::{self, AsapMessage};
use rserpool_wire::enrp::{self, EnrpMessage, PoolEntry};
use rserpool_wire::*;

const INVALID: Option<CauseCode> = Some(CauseCode::INVALID_VALUES);

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

fn build(ty: u8, flags: u8, body: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let mut w = Writer::new(&mut buf);
    let m = w.begin_message(ty, flags, "test message");
    body(&mut w);
    w.end_message(m);
    let n = w.finish().expect("test message fits");
    buf.truncate(n);
    buf
}

fn param(w: &mut Writer<'_>, ty: u16, value: impl FnOnce(&mut Writer<'_>)) {
    let m = w.begin_param(ty, "test parameter");
    value(w);
    w.end_param(m);
}

fn raw(w: &mut Writer<'_>, ty: u16, value: &[u8]) {
    param(w, ty, |w| w.put_bytes(value));
}

fn handle(w: &mut Writer<'_>) {
    raw(w, param_type::POOL_HANDLE, b"EchoService");
}

fn pe_id(w: &mut Writer<'_>) {
    raw(w, param_type::PE_IDENTIFIER, &[0x1a, 0x2b, 0x3c, 0x4d]);
}

fn v4(w: &mut Writer<'_>) {
    raw(w, param_type::IPV4_ADDRESS, &[192, 0, 2, 10]);
}

fn v6(w: &mut Writer<'_>) {
    raw(
        w,
        param_type::IPV6_ADDRESS,
        &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    );
}

/// A transport of parameter type `ty` (port 7000, Transport Use 0; DCCP gets
/// its service code) holding `inner`.
fn transport(w: &mut Writer<'_>, ty: u16, inner: impl FnOnce(&mut Writer<'_>)) {
    param(w, ty, |w| {
        w.put_u16(7000);
        w.put_u16(0);
        if ty == param_type::DCCP_TRANSPORT {
            w.put_u32(42);
        }
        inner(w);
    });
}

fn sctp(w: &mut Writer<'_>, inner: impl FnOnce(&mut Writer<'_>)) {
    transport(w, param_type::SCTP_TRANSPORT, inner);
}

fn rr(w: &mut Writer<'_>) {
    raw(w, param_type::POLICY, &1u32.to_be_bytes());
}

/// A Pool Element (id 0x1a2b3c4d, home 0, life 300) holding `inner`.
fn pe(w: &mut Writer<'_>, inner: impl FnOnce(&mut Writer<'_>)) {
    param(w, param_type::POOL_ELEMENT, |w| {
        w.put_u32(0x1a2b_3c4d);
        w.put_u32(0);
        w.put_u32(300);
        inner(w);
    });
}

fn good_pe(w: &mut Writer<'_>) {
    pe(w, |w| {
        sctp(w, v4);
        rr(w);
    });
}

fn ids(w: &mut Writer<'_>) {
    w.put_u32(0x1122_3344);
    w.put_u32(0);
}

/// Header and value of a parameter, without its pad.
fn tlv(ty: u16, value: &[u8]) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend_from_slice(&u16::try_from(value.len() + 4).unwrap().to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// Offset of the first occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

#[track_caller]
fn asap_err(bytes: &[u8]) -> Error {
    AsapMessage::parse(bytes).expect_err("must be rejected")
}

#[track_caller]
fn enrp_err(bytes: &[u8]) -> Error {
    EnrpMessage::parse(bytes).expect_err("must be rejected")
}

#[track_caller]
fn check(e: Error, kind: ErrorKind, field: &str, cause: Option<CauseCode>) -> Error {
    assert_eq!(e.kind(), kind, "{e:?}");
    assert_eq!(e.field(), field, "{e:?}");
    assert_eq!(e.cause(), cause, "{e:?}");
    e
}

/// The offending bytes are exactly `expected`, found at `at` in `bytes`.
#[track_caller]
fn offending_is(e: &Error, bytes: &[u8], at: usize, expected: &[u8]) {
    let off = e.offending(bytes).expect("points into the message");
    assert_eq!(off, expected);
    assert_eq!(off.as_ptr(), bytes[at..].as_ptr(), "at offset {at}");
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

#[test]
fn truncated_header() {
    for b in [&[][..], &[0x05], &[0x05, 0x00, 0x00]] {
        let e = check(asap_err(b), ErrorKind::Truncated, "message header", INVALID);
        assert_eq!(e.offending(b), Some(b));
        check(enrp_err(b), ErrorKind::Truncated, "message header", INVALID);
        check(
            MessageView::new_checked(b).unwrap_err(),
            ErrorKind::Truncated,
            "message header",
            INVALID,
        );
        assert_eq!(frame_len(b), Ok(None), "wait for more of the stream");
    }
}

#[test]
fn message_length_below_4() {
    for b in [
        &[0x05, 0, 0, 0][..],
        &[0x05, 0, 0, 3],
        &[0x01, 0, 0, 2, 0, 0, 0, 0],
    ] {
        check(asap_err(b), ErrorKind::BadLength, "message length", INVALID);
        check(enrp_err(b), ErrorKind::BadLength, "message length", INVALID);
        // A stream cannot be framed past it: the connection must be closed.
        let e = check(
            frame_len(b).unwrap_err(),
            ErrorKind::BadLength,
            "message length",
            INVALID,
        );
        assert_eq!(e.offending(b), Some(&b[..4]));
    }
}

#[test]
fn message_length_beyond_the_buffer() {
    let b = build(0x02, 0, |w| {
        handle(w);
        pe_id(w);
    });
    assert!(AsapMessage::parse(&b).is_ok());
    for cut in [b.len() - 1, b.len() - 4, 5, 4] {
        let short = &b[..cut];
        let e = check(asap_err(short), ErrorKind::Truncated, "message", INVALID);
        assert_eq!(e.offending(short), Some(short));
    }
    // The stream framer says how much to wait for.
    assert_eq!(frame_len(&b[..6]), Ok(Some(b.len())));
}

#[test]
fn trailing_bytes_beyond_the_pad() {
    // HANDLE_RESOLUTION "EchoService": length 19, one pad byte.
    let b = build(0x05, 0, handle);
    assert_eq!((b.len(), b[3]), (20, 19));
    assert!(AsapMessage::parse(&b).is_ok());
    assert!(
        AsapMessage::parse(&b[..19]).is_ok(),
        "final pad may be missing"
    );
    // More than 3 trailing bytes.
    let mut long = b.clone();
    long.extend_from_slice(&[0; 4]);
    let e = check(
        asap_err(&long),
        ErrorKind::BadLength,
        "message length",
        INVALID,
    );
    assert_eq!(e.offending(&long), Some(&long[..]));
    // Also fewer than 4, when they go past the 4-byte boundary the length
    // implies: they cannot be padding.
    let mut long = b.clone();
    long.push(0);
    check(
        asap_err(&long),
        ErrorKind::BadLength,
        "message length",
        INVALID,
    );
    check(
        enrp_err(&long),
        ErrorKind::BadLength,
        "message length",
        INVALID,
    );
}

#[test]
fn nonzero_message_padding() {
    let mut b = build(0x05, 0, handle);
    b[19] = 0x01;
    let e = check(asap_err(&b), ErrorKind::BadPadding, "message", INVALID);
    assert_eq!(e.offending(&b), Some(&b[..]));
    check(enrp_err(&b), ErrorKind::BadPadding, "message", INVALID);
}

#[test]
fn nonzero_padding_between_parameters() {
    // Pool handle "abc" (length 7) then a PE Identifier: the pad byte is 0xff.
    let mut b = build(0x02, 0, |w| {
        raw(w, param_type::POOL_HANDLE, b"abc");
        pe_id(w);
    });
    assert!(AsapMessage::parse(&b).is_ok());
    b[11] = 0xff;
    let e = check(asap_err(&b), ErrorKind::BadPadding, "Pool Handle", INVALID);
    // The parameter with its (bad) pad.
    offending_is(&e, &b, 4, &[0, 9, 0, 7, b'a', b'b', b'c', 0xff]);

    // Nested: an unknown policy with 1 data byte inside a Pool Element,
    // followed by the ASAP transport.
    let mut b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, v4);
            raw(w, param_type::POLICY, &[0x7f, 0, 0, 9, 0xee]);
            sctp(w, v4);
        });
    });
    assert!(AsapMessage::parse(&b).is_ok());
    let at = find(&b, &[0x7f, 0, 0, 9, 0xee]) + 5;
    b[at + 2] = 0x80;
    check(
        asap_err(&b),
        ErrorKind::BadPadding,
        "Pool Member Selection Policy",
        INVALID,
    );

    // 1-3 bytes left at the end of a region must be zero: here a Pool
    // Element whose length counts three more bytes after its policy.
    let b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, v4);
            rr(w);
            w.put_bytes(&[0, 0, 7]);
        });
    });
    let e = check(asap_err(&b), ErrorKind::BadPadding, "Pool Element", INVALID);
    offending_is(&e, &b, b.len() - 4, &[0, 0, 7]);
    // Zero bytes there are RSPLIB's final pad: accepted.
    let b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, v4);
            rr(w);
            w.put_bytes(&[0, 0, 0]);
        });
    });
    assert!(AsapMessage::parse(&b).is_ok());
}

#[test]
fn parameter_length_below_4() {
    let b = build(0x02, 0, |w| {
        w.put_bytes(&[0, 9, 0, 3]);
        pe_id(w);
    });
    let e = check(asap_err(&b), ErrorKind::BadLength, "Pool Handle", INVALID);
    assert_eq!(e.offending(&b).unwrap().as_ptr(), b[4..].as_ptr());
    // An unknown type is named after its container.
    let b = build(0x02, 0, |w| {
        handle(w);
        w.put_bytes(&[0x81, 0x23, 0, 0]);
    });
    check(
        asap_err(&b),
        ErrorKind::BadLength,
        "ASAP_DEREGISTRATION",
        INVALID,
    );
    // Nested: an address of length 2 inside an SCTP transport.
    let b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, |w| w.put_bytes(&[0, 1, 0, 2]));
            rr(w);
        });
    });
    check(asap_err(&b), ErrorKind::BadLength, "IPv4 Address", INVALID);
}

#[test]
fn parameter_past_its_container() {
    // A pool handle claiming 40 bytes in a 20-byte message.
    let mut b = build(0x05, 0, handle);
    b[7] = 40;
    let e = check(asap_err(&b), ErrorKind::Truncated, "Pool Handle", INVALID);
    assert_eq!(e.offending(&b).unwrap().as_ptr(), b[4..].as_ptr());
    // An address running past its SCTP transport (which is not the last
    // parameter of the Pool Element, so the bytes exist in the message).
    let b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, |w| w.put_bytes(&[0, 1, 0, 8, 192, 0]));
            rr(w);
        });
    });
    check(asap_err(&b), ErrorKind::Truncated, "IPv4 Address", INVALID);
    // A Pool Element running past the message.
    let mut b = build(0x01, 0, |w| {
        handle(w);
        good_pe(w);
    });
    let at = find(&b, &[0, 0x0a]) + 3;
    b[at] += 4;
    check(asap_err(&b), ErrorKind::Truncated, "Pool Element", INVALID);
}

// ---------------------------------------------------------------------------
// Fixed sizes
// ---------------------------------------------------------------------------

#[test]
fn wrong_fixed_sizes() {
    struct Case {
        what: &'static str,
        field: &'static str,
        bad: Vec<u8>,
        kind: ErrorKind,
        protocol: Protocol,
        message: fn(&[u8]) -> Vec<u8>,
    }
    /// A Registration whose SCTP user transport holds `addr`.
    fn in_transport(addr: &[u8]) -> Vec<u8> {
        build(0x01, 0, |w| {
            handle(w);
            pe(w, |w| {
                sctp(w, |w| w.put_bytes(addr));
                rr(w);
            });
        })
    }
    fn as_pe_id(p: &[u8]) -> Vec<u8> {
        build(0x02, 0, |w| {
            handle(w);
            w.put_bytes(p);
        })
    }
    fn as_checksum(p: &[u8]) -> Vec<u8> {
        build(0x01, 0, |w| {
            ids(w);
            w.put_bytes(p);
        })
    }
    fn as_option(p: &[u8]) -> Vec<u8> {
        build(0x05, 0, |w| {
            handle(w);
            w.put_bytes(p);
        })
    }
    fn as_policy(p: &[u8]) -> Vec<u8> {
        build(0x01, 0, |w| {
            handle(w);
            pe(w, |w| {
                sctp(w, v4);
                w.put_bytes(p);
            });
        })
    }
    let bad_length = ErrorKind::BadLength;
    let policy = |ty: u32, fields: usize| {
        let mut v = ty.to_be_bytes().to_vec();
        v.resize(4 + 4 * fields, 0);
        tlv(param_type::POLICY, &v)
    };
    let cases = [
        Case {
            what: "IPv4 address of 8 bytes",
            field: "IPv4 Address",
            bad: tlv(1, &[192, 0, 2, 1, 0, 0, 0, 0]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: in_transport,
        },
        Case {
            what: "IPv4 type with an IPv6 address",
            field: "IPv4 Address",
            bad: tlv(1, &[0x20; 16]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: in_transport,
        },
        Case {
            what: "IPv6 address of 4 bytes",
            field: "IPv6 Address",
            bad: tlv(2, &[192, 0, 2, 1]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: in_transport,
        },
        Case {
            what: "PE Identifier of 8 bytes",
            field: "PE Identifier",
            bad: tlv(0x0e, &[0, 0, 0, 0, 0, 0, 0, 1]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_pe_id,
        },
        Case {
            what: "empty PE Identifier",
            field: "PE Identifier",
            bad: tlv(0x0e, &[]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_pe_id,
        },
        Case {
            what: "PE Checksum of 4 bytes",
            field: "PE Checksum",
            bad: tlv(0x0f, &[0x56, 0x72, 0, 0]),
            kind: bad_length,
            protocol: Protocol::Enrp,
            message: as_checksum,
        },
        Case {
            what: "Handle Resolution option of 8 bytes",
            field: "Handle Resolution Option",
            bad: tlv(0x803f, &[0, 0, 0, 0, 0, 0, 0, 1]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_option,
        },
        Case {
            what: "Round Robin with a weight",
            field: "Pool Member Selection Policy",
            bad: policy(1, 1),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_policy,
        },
        Case {
            what: "Weighted Round Robin without weight",
            field: "Pool Member Selection Policy",
            bad: policy(2, 0),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_policy,
        },
        Case {
            what: "LUD with DPF with three of its four fields",
            field: "Pool Member Selection Policy",
            bad: policy(0xb000_2003, 3),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_policy,
        },
        Case {
            what: "Least Used with a load that is not 32 bits",
            field: "Pool Member Selection Policy",
            bad: tlv(param_type::POLICY, &[0x40, 0, 0, 1, 0, 0]),
            kind: bad_length,
            protocol: Protocol::Asap,
            message: as_policy,
        },
        Case {
            what: "policy without a whole type field",
            field: "Pool Member Selection Policy",
            bad: tlv(param_type::POLICY, &[0, 0]),
            kind: ErrorKind::Truncated,
            protocol: Protocol::Asap,
            message: as_policy,
        },
    ];
    for c in cases {
        let b = (c.message)(&c.bad);
        let e = match c.protocol {
            Protocol::Asap => AsapMessage::parse(&b).expect_err(c.what),
            Protocol::Enrp => EnrpMessage::parse(&b).expect_err(c.what),
        };
        assert_eq!((e.kind(), e.field()), (c.kind, c.field), "{}", c.what);
        assert_eq!(e.cause(), INVALID, "{}", c.what);
        // The whole offending parameter, as cause 0x3 should echo it.
        offending_is(&e, &b, find(&b, &c.bad), &c.bad);
    }
    // Each right size is accepted.
    assert!(AsapMessage::parse(&in_transport(&tlv(2, &[0x20; 16]))).is_ok());
    assert!(AsapMessage::parse(&as_policy(&policy(0xb000_2003, 4))).is_ok());
    assert!(EnrpMessage::parse(&as_checksum(&tlv(0x0f, &[0x56, 0x72]))).is_ok());
    assert!(AsapMessage::parse(&as_option(&tlv(0x803f, &[0, 0, 0, 1]))).is_ok());
}

#[test]
fn truncated_fixed_fields() {
    let cases: [(Vec<u8>, Protocol, &str); 6] = [
        (
            build(0x07, 0, |w| w.put_u16(1)),
            Protocol::Asap,
            "ASAP_ENDPOINT_KEEP_ALIVE",
        ),
        (
            build(0x0a, 0, |_| {}),
            Protocol::Asap,
            "ASAP_SERVER_ANNOUNCE",
        ),
        (
            build(0x02, 1, |w| w.put_u32(1)),
            Protocol::Enrp,
            "ENRP server identifiers",
        ),
        (
            build(0x07, 0, ids),
            Protocol::Enrp,
            "Target Server Identifier",
        ),
        (build(0x04, 0, ids), Protocol::Enrp, "Update Action"),
        // A Pool Element shorter than its 12 fixed bytes.
        (
            build(0x01, 0, |w| {
                handle(w);
                raw(w, param_type::POOL_ELEMENT, &[0; 8]);
            }),
            Protocol::Asap,
            "Pool Element",
        ),
    ];
    for (b, proto, field) in cases {
        let e = match proto {
            Protocol::Asap => asap_err(&b),
            Protocol::Enrp => enrp_err(&b),
        };
        check(e, ErrorKind::Truncated, field, INVALID);
        assert!(e.offending(&b).is_some());
    }
}

// ---------------------------------------------------------------------------
// Missing and misplaced parameters
// ---------------------------------------------------------------------------

#[test]
fn missing_mandatory_parameters() {
    let missing = ErrorKind::Missing;
    let asap_cases: Vec<(&str, Vec<u8>, ErrorKind, &str)> = vec![
        (
            "empty registration",
            build(0x01, 0, |_| {}),
            missing,
            "Pool Handle",
        ),
        (
            "registration without PE",
            build(0x01, 0, handle),
            missing,
            "Pool Element",
        ),
        (
            "PE without policy",
            build(0x01, 0, |w| {
                handle(w);
                pe(w, |w| sctp(w, v4));
            }),
            missing,
            "Pool Member Selection Policy",
        ),
        (
            "PE without user transport",
            build(0x01, 0, |w| {
                handle(w);
                pe(w, rr);
            }),
            missing,
            "User Transport",
        ),
        (
            "SCTP transport with zero addresses",
            build(0x01, 0, |w| {
                handle(w);
                pe(w, |w| {
                    sctp(w, |_| {});
                    rr(w);
                });
            }),
            ErrorKind::InvalidValue,
            "SCTP Transport",
        ),
        (
            "TCP transport with two addresses",
            build(0x01, 0, |w| {
                handle(w);
                pe(w, |w| {
                    transport(w, param_type::TCP_TRANSPORT, |w| {
                        v4(w);
                        v6(w);
                    });
                    rr(w);
                });
            }),
            ErrorKind::InvalidValue,
            "TCP Transport",
        ),
        (
            "UDP transport without address",
            build(0x01, 0, |w| {
                handle(w);
                pe(w, |w| {
                    transport(w, param_type::UDP_TRANSPORT, |_| {});
                    rr(w);
                });
            }),
            ErrorKind::InvalidValue,
            "UDP Transport",
        ),
        (
            "DCCP transport with two addresses",
            build(0x01, 0, |w| {
                handle(w);
                pe(w, |w| {
                    transport(w, param_type::DCCP_TRANSPORT, |w| {
                        v6(w);
                        v6(w);
                    });
                    rr(w);
                });
            }),
            ErrorKind::InvalidValue,
            "DCCP Transport",
        ),
        (
            "deregistration without PE id",
            build(0x02, 0, handle),
            missing,
            "PE Identifier",
        ),
        (
            "ASAP error without Operation Error",
            build(0x0e, 0, |_| {}),
            missing,
            "Operation Error",
        ),
        (
            "Operation Error with no cause",
            build(0x0e, 0, |w| raw(w, param_type::OPERATION_ERROR, &[])),
            missing,
            "error cause",
        ),
        (
            "Business Card without PEs",
            build(0x0d, 0, |w| {
                handle(w);
                rr(w);
            }),
            missing,
            "Pool Element",
        ),
        (
            "Cookie without cookie",
            build(0x0b, 0, |_| {}),
            missing,
            "Cookie",
        ),
    ];
    for (what, b, kind, field) in asap_cases {
        let e = AsapMessage::parse(&b).expect_err(what);
        assert_eq!(
            (e.kind(), e.field(), e.cause()),
            (kind, field, INVALID),
            "{what}"
        );
        assert!(e.offending(&b).is_some(), "{what}");
    }

    let enrp_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "handle table pool entry without PEs",
            build(0x03, 0, |w| {
                ids(w);
                handle(w);
                raw(w, param_type::POOL_HANDLE, b"other");
                good_pe(w);
            }),
            "Pool Element",
        ),
        (
            "last handle table pool entry without PEs",
            build(0x03, 0, |w| {
                ids(w);
                handle(w);
                good_pe(w);
                raw(w, param_type::POOL_HANDLE, b"other");
            }),
            "Pool Element",
        ),
        (
            "server information without transport",
            build(0x06, 0, |w| {
                ids(w);
                raw(w, param_type::SERVER_INFORMATION, &[0, 0, 0, 1]);
            }),
            "SCTP Transport",
        ),
        (
            "ENRP error with no cause",
            build(0x0a, 0, |w| {
                ids(w);
                raw(w, param_type::OPERATION_ERROR, &[]);
            }),
            "error cause",
        ),
        (
            "handle update without PE",
            build(0x04, 0, |w| {
                ids(w);
                w.put_u32(0);
                handle(w);
            }),
            "Pool Element",
        ),
    ];
    for (what, b, field) in enrp_cases {
        let e = EnrpMessage::parse(&b).expect_err(what);
        assert_eq!(
            (e.kind(), e.field(), e.cause()),
            (missing, field, INVALID),
            "{what}"
        );
    }

    // The entry without PEs is named by its pool handle.
    let b = build(0x03, 0, |w| {
        ids(w);
        raw(w, param_type::POOL_HANDLE, b"lonely");
        raw(w, param_type::POOL_HANDLE, b"other");
        good_pe(w);
    });
    let e = enrp_err(&b);
    offending_is(&e, &b, 12, &tlv(param_type::POOL_HANDLE, b"lonely"));
}

#[test]
fn misplaced_parameters() {
    let misplaced = ErrorKind::Misplaced;
    // PE Identifier where the Pool Handle must be.
    let b = build(0x02, 0, |w| {
        pe_id(w);
        handle(w);
    });
    let e = check(asap_err(&b), misplaced, "PE Identifier", INVALID);
    offending_is(
        &e,
        &b,
        4,
        &tlv(param_type::PE_IDENTIFIER, &[0x1a, 0x2b, 0x3c, 0x4d]),
    );

    // A second Pool Handle.
    let b = build(0x02, 0, |w| {
        handle(w);
        raw(w, param_type::POOL_HANDLE, b"second");
        pe_id(w);
    });
    let e = check(asap_err(&b), misplaced, "Pool Handle", INVALID);
    offending_is(&e, &b, 20, &tlv(param_type::POOL_HANDLE, b"second"));
    let b = build(0x05, 1, |w| {
        handle(w);
        handle(w);
    });
    check(asap_err(&b), misplaced, "Pool Handle", INVALID);

    // A known parameter appended to a fixed-length ENRP message.
    for ty in [0x02u8, 0x05, 0x07, 0x08, 0x09] {
        let b = build(ty, 0, |w| {
            ids(w);
            if ty >= 0x07 {
                w.put_u32(0x99aa_bbcc);
            }
            raw(w, param_type::PE_CHECKSUM, &[1, 2]);
        });
        let e = check(enrp_err(&b), misplaced, "PE Checksum", INVALID);
        offending_is(&e, &b, b.len() - 8, &tlv(param_type::PE_CHECKSUM, &[1, 2]));
    }

    // A TCP transport as ASAP transport (must be SCTP).
    let b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, v4);
            rr(w);
            transport(w, param_type::TCP_TRANSPORT, v4);
        });
    });
    check(asap_err(&b), misplaced, "TCP Transport", INVALID);

    // A UDP transport in a Server Announce (SCTP or TCP only).
    let b = build(0x0a, 0, |w| {
        w.put_u32(0x1122_3344);
        sctp(w, v4);
        transport(w, param_type::UDP_TRANSPORT, v4);
    });
    check(asap_err(&b), misplaced, "UDP Transport", INVALID);

    // A policy inside a transport.
    let b = build(0x01, 0, |w| {
        handle(w);
        pe(w, |w| {
            sctp(w, |w| {
                v4(w);
                rr(w);
            });
            rr(w);
        });
    });
    check(
        asap_err(&b),
        misplaced,
        "Pool Member Selection Policy",
        INVALID,
    );

    // ENRP Presence: Server Information before the PE Checksum.
    let b = build(0x01, 0, |w| {
        ids(w);
        param(w, param_type::SERVER_INFORMATION, |w| {
            w.put_u32(0x1122_3344);
            sctp(w, v4);
        });
        raw(w, param_type::PE_CHECKSUM, &[1, 2]);
    });
    check(enrp_err(&b), misplaced, "PE Checksum", INVALID);

    // The Handle Resolution option is known, so out of place it is misplaced
    // (not skipped by its action bits).
    let b = build(0x02, 0, |w| {
        handle(w);
        pe_id(w);
        raw(w, param_type::HANDLE_RESOLUTION_OPTION, &[0, 0, 0, 1]);
    });
    check(asap_err(&b), misplaced, "Handle Resolution Option", INVALID);
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

#[test]
fn pool_handle_of_33_bytes_is_too_long() {
    let b = build(0x05, 0, |w| raw(w, param_type::POOL_HANDLE, &[b'x'; 33]));
    let e = check(asap_err(&b), ErrorKind::TooLong, "Pool Handle", INVALID);
    offending_is(&e, &b, 4, &tlv(param_type::POOL_HANDLE, &[b'x'; 33]));
    let b = build(0x05, 0, |w| raw(w, param_type::POOL_HANDLE, &[b'x'; 32]));
    assert!(AsapMessage::parse(&b).is_ok());
    assert!(PoolHandle::new(&[0; 33]).is_none());
}

#[test]
fn empty_pool_handle_is_invalid() {
    let b = build(0x05, 0, |w| raw(w, param_type::POOL_HANDLE, &[]));
    let e = check(
        asap_err(&b),
        ErrorKind::InvalidValue,
        "Pool Handle",
        INVALID,
    );
    offending_is(&e, &b, 4, &[0, 9, 0, 4]);
    assert!(PoolHandle::new(&[]).is_none());
}

#[test]
fn handle_update_with_unknown_update_action() {
    for action in [2u16, 0x00ff, 0xffff] {
        let b = build(0x04, 0, |w| {
            ids(w);
            w.put_u16(action);
            w.put_u16(0);
            handle(w);
            good_pe(w);
        });
        check(
            enrp_err(&b),
            ErrorKind::InvalidValue,
            "Update Action",
            INVALID,
        );
    }
    // The reserved half is ignored (and sent as zero).
    let b = build(0x04, 0, |w| {
        ids(w);
        w.put_u16(1);
        w.put_u16(0xabcd);
        handle(w);
        good_pe(w);
    });
    let EnrpMessage::HandleUpdate(u) = EnrpMessage::parse(&b).unwrap() else {
        panic!("wrong type")
    };
    assert_eq!(u.action, enrp::UpdateAction::DelPe);
    assert_eq!(
        &EnrpMessage::HandleUpdate(u).to_vec().unwrap()[14..16],
        &[0, 0]
    );
}

#[test]
fn malformed_cause_information() {
    let error = |cause: &[u8]| build(0x0e, 0, |w| raw(w, param_type::OPERATION_ERROR, cause));
    let invalid = ErrorKind::InvalidValue;
    let v4_tlv = tlv(1, &[192, 0, 2, 1]);
    let sctp_tlv = tlv(4, &[[0x1b, 0x58, 0, 0].as_slice(), &v4_tlv].concat());
    let rr_tlv = tlv(8, &[0, 0, 0, 1]);
    // 0x5 must hold exactly one policy parameter, 0x7 exactly one transport.
    for info in [
        sctp_tlv.clone(),
        [rr_tlv.clone(), rr_tlv.clone()].concat(),
        vec![0, 0],
    ] {
        let b = error(&tlv(5, &info));
        check(asap_err(&b), invalid, "error cause", INVALID);
    }
    for info in [rr_tlv.clone(), [sctp_tlv.clone(), rr_tlv.clone()].concat()] {
        let b = error(&tlv(7, &info));
        check(asap_err(&b), invalid, "error cause", INVALID);
    }
    // A bad policy inside a cause is reported as that policy.
    let b = error(&tlv(5, &tlv(8, &[0, 0, 0, 1, 0, 0, 0, 9])));
    check(
        asap_err(&b),
        ErrorKind::BadLength,
        "Pool Member Selection Policy",
        INVALID,
    );
    // A cause running past the Operation Error, and a cause with a non-zero
    // pad: named "error cause", although codes 0x9 and 0xd are also the
    // numbers of the Pool Handle and Cookie parameter types.
    let mut b = error(&tlv(9, &[]));
    b[11] = 8;
    check(asap_err(&b), ErrorKind::Truncated, "error cause", INVALID);
    let mut b = build(0x0e, 0, |w| {
        param(w, param_type::OPERATION_ERROR, |w| {
            raw(w, 0x0d, b"abc");
            raw(w, 9, &[]);
        });
    });
    assert!(AsapMessage::parse(&b).is_ok());
    b[15] = 1;
    let e = check(asap_err(&b), ErrorKind::BadPadding, "error cause", INVALID);
    offending_is(&e, &b, 8, &[0, 0x0d, 0, 7, b'a', b'b', b'c', 1]);
    // Accepted shapes: RSPLIB's empty 0x3/0x5, a policy, a transport.
    for cause in [tlv(3, &[]), tlv(5, &[]), tlv(5, &rr_tlv), tlv(7, &sctp_tlv)] {
        assert!(AsapMessage::parse(&error(&cause)).is_ok());
    }
}

// ---------------------------------------------------------------------------
// Unknown parameters and messages
// ---------------------------------------------------------------------------

const ACTIONS: [(u16, UnrecognizedAction); 4] = [
    (0x0000, UnrecognizedAction::Stop),
    (0x4000, UnrecognizedAction::StopAndReport),
    (0x8000, UnrecognizedAction::Skip),
    (0xc000, UnrecognizedAction::SkipAndReport),
];

fn decode<'a>(
    proto: Protocol,
    b: &'a [u8],
    reports: &mut Reports<'a>,
) -> Result<Message<'a>, Error> {
    match proto {
        Protocol::Asap => AsapMessage::parse_reporting(b, reports).map(Message::Asap),
        Protocol::Enrp => EnrpMessage::parse_reporting(b, reports).map(Message::Enrp),
    }
}

/// `build(None)` is a valid message; `build(Some(tlv))` is the same with the
/// unknown parameter `tlv` somewhere. Checks all four action-bit patterns.
fn check_actions(proto: Protocol, build: impl Fn(Option<&[u8]>) -> Vec<u8>) {
    let clean = build(None);
    let mut none = Reports::new();
    let expected = decode(proto, &clean, &mut none).expect("the clean message decodes");
    for (bits, action) in ACTIONS {
        // Type 0x0123 with the action bits, 3 value bytes (so it is padded).
        let unknown = tlv(0x0123 | bits, b"xyz");
        let b = build(Some(&unknown));
        let at = find(&b, &unknown);
        let mut reports = Reports::new();
        match action {
            UnrecognizedAction::Stop | UnrecognizedAction::StopAndReport => {
                let e = decode(proto, &b, &mut reports).expect_err("stop");
                let cause = (action == UnrecognizedAction::StopAndReport)
                    .then_some(CauseCode::UNRECOGNIZED_PARAMETER);
                check(
                    e,
                    ErrorKind::UnrecognizedParameter(action),
                    "unrecognized parameter",
                    cause,
                );
                // Exactly the unknown parameter, as cause 0x1 echoes it.
                offending_is(&e, &b, at, &unknown);
            }
            UnrecognizedAction::Skip | UnrecognizedAction::SkipAndReport => {
                let m = decode(proto, &b, &mut reports).expect("skip");
                assert_eq!(m, expected, "{action:?}");
                let reported: Vec<&[u8]> = reports.iter().collect();
                if action == UnrecognizedAction::SkipAndReport {
                    assert_eq!(reported, [&unknown[..]]);
                    assert_eq!(reported[0].as_ptr(), b[at..].as_ptr());
                } else {
                    assert!(reported.is_empty());
                }
                // Re-encoding drops it.
                assert_eq!(m.to_vec().unwrap(), clean);
            }
        }
    }
}

#[test]
fn unknown_parameter_at_message_level() {
    // Between the Pool Handle and the Pool Element of a Registration.
    check_actions(Protocol::Asap, |u| {
        build(0x01, 0, |w| {
            handle(w);
            if let Some(u) = u {
                w.put_param_bytes(u);
            }
            good_pe(w);
        })
    });
    // After the last parameter.
    check_actions(Protocol::Asap, |u| {
        build(0x05, 1, |w| {
            handle(w);
            if let Some(u) = u {
                w.put_param_bytes(u);
            }
        })
    });
    // In a fixed-length ENRP message.
    check_actions(Protocol::Enrp, |u| {
        build(0x02, 1, |w| {
            ids(w);
            if let Some(u) = u {
                w.put_param_bytes(u);
            }
        })
    });
}

#[test]
fn unknown_parameter_inside_a_pool_element() {
    // Between user transport and policy.
    check_actions(Protocol::Asap, |u| {
        build(0x01, 0, |w| {
            handle(w);
            pe(w, |w| {
                sctp(w, v4);
                if let Some(u) = u {
                    w.put_param_bytes(u);
                }
                rr(w);
            });
        })
    });
    // After the ASAP transport, in an ENRP Handle Update.
    check_actions(Protocol::Enrp, |u| {
        build(0x04, 0, |w| {
            ids(w);
            w.put_u32(0);
            handle(w);
            pe(w, |w| {
                sctp(w, v4);
                rr(w);
                sctp(w, v6);
                if let Some(u) = u {
                    w.put_param_bytes(u);
                }
            });
        })
    });
}

#[test]
fn unknown_parameter_inside_an_sctp_transport() {
    // Between two addresses of a PE's user transport.
    check_actions(Protocol::Asap, |u| {
        build(0x01, 0, |w| {
            handle(w);
            pe(w, |w| {
                sctp(w, |w| {
                    v4(w);
                    if let Some(u) = u {
                        w.put_param_bytes(u);
                    }
                    v6(w);
                });
                rr(w);
            });
        })
    });
    // In the transport of an ENRP server's Server Information.
    check_actions(Protocol::Enrp, |u| {
        build(0x01, 1, |w| {
            ids(w);
            raw(w, param_type::PE_CHECKSUM, &[0x56, 0x72]);
            param(w, param_type::SERVER_INFORMATION, |w| {
                w.put_u32(0x1122_3344);
                sctp(w, |w| {
                    if let Some(u) = u {
                        w.put_param_bytes(u);
                    }
                    v4(w);
                });
            });
        })
    });
}

#[test]
fn reports_keep_the_first_eight() {
    let b = build(0x05, 0, |w| {
        handle(w);
        for i in 0..10u16 {
            raw(w, 0xc100 + i, &[]);
        }
    });
    let mut reports = Reports::new();
    AsapMessage::parse_reporting(&b, &mut reports).unwrap();
    let got: Vec<&[u8]> = reports.iter().collect();
    assert_eq!(got.len(), MAX_REPORTS);
    assert_eq!(reports.dropped(), 10 - MAX_REPORTS);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(*r, &tlv(0xc100 + u16::try_from(i).unwrap(), &[])[..]);
    }
}

#[test]
fn unknown_message_types() {
    let cases = [
        (0x0f, false),
        (0x3f, false),
        (0x40, true),
        (0x7f, true),
        (0x80, false),
        (0xc0, false),
        (0xff, false),
        (0x00, false),
    ];
    for (ty, report) in cases {
        // With a body, and bare (shorter than any ENRP message).
        for b in [build(ty, 0x5a, handle), vec![ty, 0, 0, 4]] {
            let cause = report.then_some(CauseCode::UNRECOGNIZED_MESSAGE);
            let kind = ErrorKind::UnrecognizedMessage { report };
            let e = check(asap_err(&b), kind, "ASAP message type", cause);
            // Cause 0x2 echoes the whole message.
            offending_is(&e, &b, 0, &b);
            let e = check(enrp_err(&b), kind, "ENRP message type", cause);
            offending_is(&e, &b, 0, &b);
        }
    }
    // ENRP stops at 0x0A; ASAP's 0x0B-0x0E are unknown to ENRP.
    for ty in [0x0bu8, 0x0e] {
        let b = build(ty, 0, ids);
        check(
            enrp_err(&b),
            ErrorKind::UnrecognizedMessage { report: false },
            "ENRP message type",
            None,
        );
    }
}

// ---------------------------------------------------------------------------
// The encoder's refusals
// ---------------------------------------------------------------------------

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const B: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn ph() -> PoolHandle<'static> {
    PoolHandle::new(b"EchoService").unwrap()
}

fn element(user: Transport<'_>) -> PoolElement<'_> {
    PoolElement {
        id: PeId(1),
        home_server: ServerId(0),
        registration_life: 300,
        user_transport: user,
        policy: Policy::RoundRobin {}.into(),
        asap_transport: None,
    }
}

#[test]
fn encode_into_too_small_a_buffer() {
    let addrs = [A, B];
    let pes = [
        element(Transport::sctp(7000, TransportUse::DATA_ONLY, &addrs)),
        element(Transport::tcp(
            80,
            TransportUse::DATA_PLUS_CONTROL,
            &addrs[..1],
        )),
    ];
    let m = AsapMessage::HandleResolutionResponse(asap::HandleResolutionResponse {
        accept: true,
        pool_handle: ph(),
        policy: Some(Policy::LeastUsed { load: 7 }.into()),
        elements: Seq::from_items(&pes),
        error: None,
    });
    let n = m.encoded_len();
    for size in [0, 1, 4, n / 2, n - 1] {
        let mut buf = vec![0u8; size];
        assert_eq!(
            m.encode(&mut buf),
            Err(EncodeError::BufferTooSmall { needed: n })
        );
    }
    let mut buf = vec![0u8; n];
    assert_eq!(m.encode(&mut buf), Ok(n));
    assert_eq!(AsapMessage::parse(&buf).unwrap(), m);
}

#[test]
fn encode_transport_with_wrong_address_count() {
    let two = [A, B];
    let cases = [
        (
            Transport::sctp(1, TransportUse::DATA_ONLY, &[]),
            "SCTP Transport",
        ),
        (
            Transport::tcp(1, TransportUse::DATA_ONLY, &two),
            "TCP Transport",
        ),
        (
            Transport::tcp(1, TransportUse::DATA_ONLY, &[]),
            "TCP Transport",
        ),
        (Transport::udp(1, &two), "UDP Transport"),
        (Transport::udp_lite(1, &[]), "UDP-Lite Transport"),
        (Transport::dccp(1, 2, &two), "DCCP Transport"),
        (
            Transport {
                addresses: Seq::from_items(&two[..1]),
                ..Transport::opaque(b"x")
            },
            "Opaque Transport",
        ),
    ];
    for (t, field) in cases {
        let expected = Err(EncodeError::InvalidValue { field });
        assert_eq!(t.to_vec(), expected, "{field}");
        // Also deep inside a message.
        let m = AsapMessage::Registration(asap::Registration {
            pool_handle: ph(),
            element: element(t),
        });
        assert_eq!(m.to_vec(), expected, "{field} in a registration");
        let mut buf = [0u8; 256];
        assert_eq!(m.encode(&mut buf), Err(EncodeError::InvalidValue { field }));
    }
}

#[test]
fn encode_empty_operation_error() {
    let expected = Err(EncodeError::InvalidValue {
        field: "Operation Error",
    });
    let empty = OperationError::new(&[]);
    assert_eq!(empty.to_vec(), expected);
    assert_eq!(
        AsapMessage::Error(asap::AsapError { error: empty }).to_vec(),
        expected
    );
    let m = AsapMessage::RegistrationResponse(asap::RegistrationResponse {
        reject: true,
        pool_handle: ph(),
        pe_id: PeId(1),
        error: Some(empty),
    });
    assert_eq!(m.to_vec(), expected);
    let m = EnrpMessage::Error(enrp::EnrpError {
        sender: ServerId(1),
        receiver: ServerId(2),
        error: empty,
    });
    assert_eq!(m.to_vec(), expected);
}

#[test]
fn encode_oversized_cookie() {
    let big = vec![7u8; 65_536];
    let expected = Err(EncodeError::TooLarge { field: "Cookie" });
    assert_eq!(Cookie(&big).to_vec(), expected);
    let m = AsapMessage::CookieEcho(asap::CookieEcho { cookie: &big });
    assert_eq!(m.to_vec(), expected);
    let mut buf = vec![0u8; 70_000];
    assert_eq!(
        m.encode(&mut buf),
        Err(EncodeError::TooLarge { field: "Cookie" })
    );
    // The largest cookie parameter fits, but not in a message.
    let fits = &big[..65_535 - 4];
    assert_eq!(Cookie(fits).to_vec().map(|v| v.len()), Ok(65_536));
    assert_eq!(
        AsapMessage::Cookie(asap::Cookie { cookie: fits }).to_vec(),
        Err(EncodeError::TooLarge {
            field: "ASAP_COOKIE"
        })
    );
}

#[test]
fn encode_other_structural_refusals() {
    let one = [A];
    let sctp = Transport::sctp(1, TransportUse::DATA_ONLY, &one);
    let tcp = Transport::tcp(1, TransportUse::DATA_ONLY, &one);
    let udp = Transport::udp(1, &one);
    let pes = [element(sctp)];
    let refuse = |r: Result<Vec<u8>, EncodeError>, field: &'static str| {
        assert_eq!(r, Err(EncodeError::InvalidValue { field }), "{field}");
    };
    refuse(
        AsapMessage::BusinessCard(asap::BusinessCard {
            pool_handle: ph(),
            policy: None,
            elements: Seq::empty(),
        })
        .to_vec(),
        "Business Card",
    );
    let entries = [PoolEntry {
        pool_handle: ph(),
        elements: Seq::empty(),
    }];
    refuse(
        EnrpMessage::HandleTableResponse(enrp::HandleTableResponse {
            reject: false,
            more: false,
            sender: ServerId(1),
            receiver: ServerId(2),
            entries: Seq::from_items(&entries),
        })
        .to_vec(),
        "Handle Table pool entry",
    );
    refuse(
        PoolElement {
            asap_transport: Some(tcp),
            ..element(sctp)
        }
        .to_vec(),
        "ASAP Transport",
    );
    refuse(
        ServerInfo {
            server_id: ServerId(1),
            transport: udp,
        }
        .to_vec(),
        "Server Information transport",
    );
    let ts = [sctp, udp];
    refuse(
        AsapMessage::ServerAnnounce(asap::ServerAnnounce {
            server_id: ServerId(1),
            transports: Seq::from_items(&ts),
        })
        .to_vec(),
        "Server Announce transport",
    );
    // The same values with their invariants met encode.
    assert!(
        AsapMessage::BusinessCard(asap::BusinessCard {
            pool_handle: ph(),
            policy: None,
            elements: Seq::from_items(&pes),
        })
        .to_vec()
        .is_ok()
    );
}
