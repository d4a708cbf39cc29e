//! JSON rendering of decoded ASAP and ENRP messages (for `poolctl decode` and
//! any other tool that shows messages to people or scripts).
//!
//! Every decoded value maps to a [`serde_json::Value`] with named fields:
//!
//! * a message is an object with `protocol` (`"asap"` / `"enrp"`), `type`
//!   (the RFC name, e.g. `"ASAP_REGISTRATION"`), `code` (the type number),
//!   `flags` (`raw` plus one boolean per flag the RFC defines for the type,
//!   e.g. `"reject": true`) and one key per parameter;
//! * absent optional parameters are `null`;
//! * identifiers (PE ids, server ids) are strings like `"0x1a2b3c4d"`;
//!   16-bit checksums are `"0x5672"`; policy and parameter type codes are hex
//!   strings too;
//! * byte strings (cookies, opaque transports, raw cause information, unknown
//!   policy data) are lowercase hex without a prefix, so they can be pasted
//!   back into `poolctl decode`;
//! * a pool handle is `{"text": ..., "hex": ...}`, `text` being `null` when
//!   the handle is not printable ASCII;
//! * `registration_life` is the raw 32-bit number as on the wire: RFC 5354
//!   says seconds (-1 = infinite), RSPLIB sends milliseconds, so it is not
//!   converted; `registration_life_infinite` is set for `0xffffffff`.
//!
//! Keys are sorted (serde_json's default map), which keeps the output stable.

use std::fmt::Write as _;
use std::net::IpAddr;

use rserpool_wire::asap::AsapMessage;
use rserpool_wire::enrp::{EnrpMessage, PoolEntry, UpdateAction};
use rserpool_wire::{
    Cause, CauseInfo, Error, HandleResolutionOption, Message, OperationError, Param, PeChecksum,
    PeId, Policy, PolicyParam, PoolElement, PoolHandle, Protocol, REGISTRATION_LIFE_INFINITE,
    Reports, Seq, ServerId, ServerInfo, Tlv, Transport, TransportKind, flags, param_type,
};
use serde_json::{Map, Value, json};

/// Lowercase hex of `bytes`, no prefix, no separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn id32(v: u32) -> Value {
    Value::String(format!("0x{v:08x}"))
}

/// A PE identifier as `"0x1a2b3c4d"`.
pub fn pe_id(id: PeId) -> Value {
    id32(id.0)
}

/// A server identifier as `"0x11223344"`.
pub fn server_id(id: ServerId) -> Value {
    id32(id.0)
}

/// A PE checksum as `"0x5672"`.
pub fn pe_checksum(c: PeChecksum) -> Value {
    Value::String(format!("0x{:04x}", c.0))
}

/// A pool handle: `{"text": "EchoService", "hex": "4563..."}`; `text` is
/// `null` unless every byte is printable ASCII (or a space).
pub fn pool_handle(h: &PoolHandle<'_>) -> Value {
    let b = h.as_bytes();
    let text = if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        // Printable ASCII is valid UTF-8.
        Value::String(b.iter().map(|&c| char::from(c)).collect())
    } else {
        Value::Null
    };
    json!({ "text": text, "hex": hex(b) })
}

/// A selection policy: `name`, `type` (hex), and each field by its RFC 5356
/// name; an unknown policy has `name: "unknown"`, its `type` and `data` (hex).
pub fn policy(p: &PolicyParam<'_>) -> Value {
    let ty = p.policy_type();
    let mut m = Map::new();
    m.insert("type".into(), id32(ty.0));
    match p {
        PolicyParam::Known(k) => {
            m.insert("name".into(), k.name().into());
            let names = Policy::field_names(ty).unwrap_or(&[]);
            for (name, v) in names.iter().zip(k.values().as_slice()) {
                m.insert((*name).into(), (*v).into());
            }
        }
        PolicyParam::Unknown { data, .. } => {
            m.insert("name".into(), "unknown".into());
            m.insert("data".into(), hex(data).into());
        }
    }
    Value::Object(m)
}

fn address(a: IpAddr) -> Value {
    Value::String(a.to_string())
}

/// A transport parameter: `kind` (`sctp`, `tcp`, `udp`, `udplite`, `dccp`,
/// `opaque`), `type` (parameter type, hex), and by kind: `port`,
/// `addresses`, `transport_use` (SCTP, TCP: `{"code", "name"}`), `reserved`
/// (UDP, UDP-Lite, DCCP), `service_code` (DCCP), `opaque` (hex).
pub fn transport(t: &Transport<'_>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), t.kind.name().into());
    m.insert(
        "type".into(),
        format!("0x{:04x}", t.kind.param_type()).into(),
    );
    if t.kind == TransportKind::Opaque {
        m.insert("opaque".into(), hex(t.opaque).into());
        return Value::Object(m);
    }
    m.insert("port".into(), t.port.into());
    m.insert(
        "addresses".into(),
        t.addresses.iter().map(address).collect::<Vec<_>>().into(),
    );
    match t.kind {
        TransportKind::Sctp | TransportKind::Tcp => {
            let name = match t.transport_use.0 {
                0 => "data_only",
                1 => "data_plus_control",
                _ => "unknown",
            };
            m.insert(
                "transport_use".into(),
                json!({ "code": t.transport_use.0, "name": name }),
            );
        }
        _ => {
            m.insert("reserved".into(), t.transport_use.0.into());
        }
    }
    if t.kind == TransportKind::Dccp {
        m.insert("service_code".into(), t.service_code.into());
    }
    Value::Object(m)
}

/// A Pool Element parameter.
pub fn pool_element(e: &PoolElement<'_>) -> Value {
    json!({
        "pe_id": pe_id(e.id),
        "home_server_id": server_id(e.home_server),
        "registration_life": e.registration_life,
        "registration_life_infinite": e.registration_life == REGISTRATION_LIFE_INFINITE,
        "user_transport": transport(&e.user_transport),
        "policy": policy(&e.policy),
        "asap_transport": e.asap_transport.as_ref().map(transport),
    })
}

/// A Server Information parameter.
pub fn server_info(s: &ServerInfo<'_>) -> Value {
    json!({
        "server_id": server_id(s.server_id),
        "transport": transport(&s.transport),
    })
}

/// One error cause: `code` (number), `name`, and `info`: the policy object for
/// Inconsistent Pooling Policy (0x5), the transport object for Inconsistent
/// Transport Type (0x7), hex of the raw information otherwise.
pub fn cause(c: &Cause<'_>) -> Value {
    let info = match &c.info {
        CauseInfo::Bytes(b) => Value::String(hex(b)),
        CauseInfo::Policy(p) => policy(p),
        CauseInfo::Transport(t) => transport(t),
    };
    json!({ "code": c.code.0, "name": c.code.name(), "info": info })
}

/// An Operation Error parameter: `{"causes": [...]}`.
pub fn operation_error(e: &OperationError<'_>) -> Value {
    json!({ "causes": e.causes.iter().map(|c| cause(&c)).collect::<Vec<_>>() })
}

/// RSPLIB's Handle Resolution option: `{"items": n}`, plus
/// `"as_many_as_possible": true` for `0xffffffff`.
pub fn handle_resolution_option(o: &HandleResolutionOption) -> Value {
    json!({ "items": o.items, "as_many_as_possible": o.items == u32::MAX })
}

/// A handle-table pool entry: its handle and its PEs.
pub fn pool_entry(e: &PoolEntry<'_>) -> Value {
    json!({
        "pool_handle": pool_handle(&e.pool_handle),
        "pool_elements": elements(&e.elements),
    })
}

/// An ENRP Update Action: `{"code": 0, "name": "ADD_PE"}`.
pub fn update_action(a: UpdateAction) -> Value {
    let name = match a {
        UpdateAction::AddPe => "ADD_PE",
        UpdateAction::DelPe => "DEL_PE",
    };
    json!({ "code": a.code(), "name": name })
}

fn elements(s: &Seq<'_, PoolElement<'_>>) -> Value {
    Value::Array(s.iter().map(|e| pool_element(&e)).collect())
}

fn opt<T>(v: Option<&T>, f: impl Fn(&T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}

/// An unknown parameter: its type (hex), action bits and value (hex).
pub fn unknown_param(t: &Tlv<'_>) -> Value {
    json!({
        "type": format!("0x{:04x}", t.ty()),
        "action": format!("{:?}", t.action()),
        "value": hex(t.value()),
    })
}

/// Any single parameter, tagged with `param` (its RFC 5354 name) and `type`
/// (hex); the value is under the key the message renderers use for it.
pub fn param(p: &Param<'_>) -> Value {
    let (ty, key, v) = match p {
        Param::Address(a) => {
            let ty = if a.is_ipv4() {
                param_type::IPV4_ADDRESS
            } else {
                param_type::IPV6_ADDRESS
            };
            (ty, "address", address(*a))
        }
        Param::Transport(t) => (t.kind.param_type(), "transport", transport(t)),
        Param::Policy(x) => (param_type::POLICY, "policy", policy(x)),
        Param::PoolHandle(h) => (param_type::POOL_HANDLE, "pool_handle", pool_handle(h)),
        Param::PoolElement(e) => (param_type::POOL_ELEMENT, "pool_element", pool_element(e)),
        Param::ServerInfo(s) => (
            param_type::SERVER_INFORMATION,
            "server_info",
            server_info(s),
        ),
        Param::OperationError(e) => (
            param_type::OPERATION_ERROR,
            "operation_error",
            operation_error(e),
        ),
        Param::Cookie(c) => (param_type::COOKIE, "cookie", hex(c.0).into()),
        Param::PeId(id) => (param_type::PE_IDENTIFIER, "pe_id", pe_id(*id)),
        Param::PeChecksum(c) => (param_type::PE_CHECKSUM, "pe_checksum", pe_checksum(*c)),
        Param::HandleResolutionOption(o) => (
            param_type::HANDLE_RESOLUTION_OPTION,
            "handle_resolution_option",
            handle_resolution_option(o),
        ),
        Param::Unknown(t) => (t.ty(), "unknown", unknown_param(t)),
    };
    json!({
        "param": param_type::name(ty),
        "type": format!("0x{ty:04x}"),
        key: v,
    })
}

fn flags_obj(raw: u8, named: &[(&str, u8)]) -> Value {
    let mut m = Map::new();
    m.insert("raw".into(), raw.into());
    for (name, mask) in named {
        m.insert((*name).into(), (raw & mask != 0).into());
    }
    Value::Object(m)
}

fn asap_flag_names(m: &AsapMessage<'_>) -> &'static [(&'static str, u8)] {
    match m {
        AsapMessage::RegistrationResponse(_) => &[("reject", flags::REGISTRATION_REJECT)],
        AsapMessage::HandleResolution(_) => &[("subscribe", flags::HANDLE_RESOLUTION_SUBSCRIBE)],
        AsapMessage::HandleResolutionResponse(_) => &[("accept", flags::HANDLE_RESOLUTION_ACCEPT)],
        AsapMessage::EndpointKeepAlive(_) => &[("home", flags::KEEP_ALIVE_HOME)],
        _ => &[],
    }
}

fn enrp_flag_names(m: &EnrpMessage<'_>) -> &'static [(&'static str, u8)] {
    match m {
        EnrpMessage::Presence(_) => &[("reply_required", flags::PRESENCE_REPLY_REQUIRED)],
        EnrpMessage::HandleTableRequest(_) => {
            &[("own_children_only", flags::HANDLE_TABLE_OWN_CHILDREN_ONLY)]
        }
        EnrpMessage::HandleTableResponse(_) => &[
            ("reject", flags::HANDLE_TABLE_REJECT),
            ("more", flags::HANDLE_TABLE_MORE),
        ],
        EnrpMessage::HandleUpdate(_) => &[(
            "takeover_suggested",
            flags::HANDLE_UPDATE_TAKEOVER_SUGGESTED,
        )],
        EnrpMessage::ListResponse(_) => &[("reject", flags::LIST_REJECT)],
        _ => &[],
    }
}

/// An ASAP message; `flags.raw` is the flags byte the message encodes with
/// (use [`decode`] to show the byte as received, undefined bits included).
pub fn asap_message(m: &AsapMessage<'_>) -> Value {
    asap_with_flags(m, m.flags())
}

fn asap_with_flags(m: &AsapMessage<'_>, raw_flags: u8) -> Value {
    let ty = m.message_type();
    let mut o = Map::new();
    o.insert("protocol".into(), "asap".into());
    o.insert("type".into(), ty.name().into());
    o.insert("code".into(), ty.code().into());
    o.insert("flags".into(), flags_obj(raw_flags, asap_flag_names(m)));
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    match m {
        AsapMessage::Registration(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pool_element", pool_element(&x.element));
        }
        AsapMessage::Deregistration(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pe_id", pe_id(x.pe_id));
        }
        AsapMessage::RegistrationResponse(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pe_id", pe_id(x.pe_id));
            put("operation_error", opt(x.error.as_ref(), operation_error));
        }
        AsapMessage::DeregistrationResponse(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pe_id", pe_id(x.pe_id));
            put("operation_error", opt(x.error.as_ref(), operation_error));
        }
        AsapMessage::HandleResolution(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put(
                "handle_resolution_option",
                opt(x.option.as_ref(), handle_resolution_option),
            );
        }
        AsapMessage::HandleResolutionResponse(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("policy", opt(x.policy.as_ref(), policy));
            put("pool_elements", elements(&x.elements));
            put("operation_error", opt(x.error.as_ref(), operation_error));
        }
        AsapMessage::EndpointKeepAlive(x) => {
            put("server_id", server_id(x.server_id));
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pe_id", opt(x.pe_id.as_ref(), |id| pe_id(*id)));
        }
        AsapMessage::EndpointKeepAliveAck(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pe_id", pe_id(x.pe_id));
        }
        AsapMessage::EndpointUnreachable(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pe_id", pe_id(x.pe_id));
        }
        AsapMessage::ServerAnnounce(x) => {
            put("server_id", server_id(x.server_id));
            put(
                "transports",
                x.transports.iter().map(|t| transport(&t)).collect(),
            );
        }
        AsapMessage::Cookie(x) => put("cookie", hex(x.cookie).into()),
        AsapMessage::CookieEcho(x) => put("cookie", hex(x.cookie).into()),
        AsapMessage::BusinessCard(x) => {
            put("pool_handle", pool_handle(&x.pool_handle));
            put("policy", opt(x.policy.as_ref(), policy));
            put("pool_elements", elements(&x.elements));
        }
        AsapMessage::Error(x) => put("operation_error", operation_error(&x.error)),
    }
    Value::Object(o)
}

/// An ENRP message; `flags.raw` as for [`asap_message`].
pub fn enrp_message(m: &EnrpMessage<'_>) -> Value {
    enrp_with_flags(m, m.flags())
}

fn enrp_with_flags(m: &EnrpMessage<'_>, raw_flags: u8) -> Value {
    let ty = m.message_type();
    let (sender, receiver) = m.ids();
    let mut o = Map::new();
    o.insert("protocol".into(), "enrp".into());
    o.insert("type".into(), ty.name().into());
    o.insert("code".into(), ty.code().into());
    o.insert("flags".into(), flags_obj(raw_flags, enrp_flag_names(m)));
    o.insert("sender_server_id".into(), server_id(sender));
    o.insert("receiver_server_id".into(), server_id(receiver));
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    match m {
        EnrpMessage::Presence(x) => {
            put("pe_checksum", opt(x.checksum.as_ref(), |c| pe_checksum(*c)));
            put("server_info", opt(x.server_info.as_ref(), server_info));
        }
        EnrpMessage::HandleTableRequest(_) | EnrpMessage::ListRequest(_) => {}
        EnrpMessage::HandleTableResponse(x) => {
            put(
                "pool_entries",
                x.entries.iter().map(|e| pool_entry(&e)).collect(),
            );
        }
        EnrpMessage::HandleUpdate(x) => {
            put("update_action", update_action(x.action));
            put("pool_handle", pool_handle(&x.pool_handle));
            put("pool_element", pool_element(&x.element));
        }
        EnrpMessage::ListResponse(x) => {
            put(
                "server_infos",
                x.servers.iter().map(|s| server_info(&s)).collect(),
            );
        }
        EnrpMessage::InitTakeover(t)
        | EnrpMessage::InitTakeoverAck(t)
        | EnrpMessage::TakeoverServer(t) => put("target_server_id", server_id(t.target)),
        EnrpMessage::Error(x) => put("operation_error", operation_error(&x.error)),
    }
    Value::Object(o)
}

/// A message of either protocol.
pub fn message(m: &Message<'_>) -> Value {
    match m {
        Message::Asap(a) => asap_message(a),
        Message::Enrp(e) => enrp_message(e),
    }
}

/// Decodes one message of `protocol` and renders it, showing what only the
/// received bytes tell: the flags byte as received (`flags.raw`, undefined
/// bits included), the received `length` in bytes (padding included), and
/// `unrecognized_parameters`: the unknown parameters marked "skip and report"
/// (hex, header included) that a server would echo in an error report, when
/// there are any.
pub fn decode(protocol: Protocol, bytes: &[u8]) -> Result<Value, Error> {
    let mut reports = Reports::new();
    let raw_flags = bytes.get(1).copied().unwrap_or(0);
    let mut v = match protocol {
        Protocol::Asap => asap_with_flags(
            &AsapMessage::parse_reporting(bytes, &mut reports)?,
            raw_flags,
        ),
        Protocol::Enrp => enrp_with_flags(
            &EnrpMessage::parse_reporting(bytes, &mut reports)?,
            raw_flags,
        ),
    };
    if let Value::Object(o) = &mut v {
        o.insert("length".into(), bytes.len().into());
        if !reports.is_empty() {
            o.insert(
                "unrecognized_parameters".into(),
                reports.iter().map(hex).collect(),
            );
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool_wire::{Encode, TransportUse};

    /// Hex with whitespace, as in wire/tests/spec_examples.rs.
    fn h(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap()
    }

    // wire/tests/spec_examples.rs, s12_1.
    const REGISTRATION: &str = "01 00 00 3c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0a 00 28 1a 2b 3c 4d 00 00 00 00
         00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08 00 00 00 01";
    // s12_2b.
    const REG_RESPONSE_REJECTED: &str = "03 01 00 30 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b 3c 4d 00 0c 00 14
         00 05 00 10 00 08 00 0c 40 00 00 01 00 00 00 00";
    // s12_4.
    const HRR_TWO_PES: &str = "06 00 00 74 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 08 00 08 00 00 00 01 00 0a 00 28
         1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08
         00 00 00 01 00 0a 00 30 5e 6f 70 81 11 22 33 44 00 00 01 2c 00 04 00 18 1b 58 00 00 00 01 00 08
         c0 00 02 0b 00 01 00 08 c6 33 64 0b 00 08 00 08 00 00 00 01";
    // s12_5.
    const PRESENCE: &str = "01 00 00 2c 11 22 33 44 00 00 00 00 00 0f 00 06 56 72 00 00 00 0b 00 18 11 22 33 44 00 04 00 10
         26 ad 00 00 00 01 00 08 c0 00 02 01";
    // s12_6.
    const HANDLE_UPDATE: &str = "04 00 00 58 11 22 33 44 00 00 00 00 00 00 00 00 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00
         00 0a 00 38 1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a
         00 08 00 08 00 00 00 01 00 04 00 10 c3 50 00 00 00 01 00 08 c0 00 02 0a";

    fn asap(s: &str) -> Value {
        decode(Protocol::Asap, &h(s)).unwrap()
    }

    fn enrp(s: &str) -> Value {
        decode(Protocol::Enrp, &h(s)).unwrap()
    }

    #[test]
    fn registration() {
        let v = asap(REGISTRATION);
        assert_eq!(v["protocol"], "asap");
        assert_eq!(v["type"], "ASAP_REGISTRATION");
        assert_eq!(v["code"], 1);
        assert_eq!(v["length"], 60);
        assert_eq!(v["flags"], json!({"raw": 0}));
        assert_eq!(
            v["pool_handle"],
            json!({"text": "EchoService", "hex": "4563686f53657276696365"})
        );
        let pe = &v["pool_element"];
        assert_eq!(pe["pe_id"], "0x1a2b3c4d");
        assert_eq!(pe["home_server_id"], "0x00000000");
        assert_eq!(pe["registration_life"], 300);
        assert_eq!(pe["registration_life_infinite"], false);
        assert_eq!(
            pe["user_transport"],
            json!({
                "kind": "sctp", "type": "0x0004", "port": 7000,
                "addresses": ["192.0.2.10"],
                "transport_use": {"code": 0, "name": "data_only"},
            })
        );
        assert_eq!(
            pe["policy"],
            json!({"name": "Round Robin", "type": "0x00000001"})
        );
        assert_eq!(pe["asap_transport"], Value::Null);
        assert!(v.get("unrecognized_parameters").is_none());
    }

    #[test]
    fn rejected_registration_response_with_typed_cause() {
        let v = asap(REG_RESPONSE_REJECTED);
        assert_eq!(v["type"], "ASAP_REGISTRATION_RESPONSE");
        assert_eq!(v["flags"], json!({"raw": 1, "reject": true}));
        assert_eq!(v["pe_id"], "0x1a2b3c4d");
        assert_eq!(
            v["operation_error"],
            json!({"causes": [{
                "code": 5,
                "name": "Inconsistent Pooling Policy",
                "info": {"name": "Least Used", "type": "0x40000001", "load": 0},
            }]})
        );
    }

    #[test]
    fn handle_resolution_response_lists_every_pe() {
        let v = asap(HRR_TWO_PES);
        assert_eq!(v["type"], "ASAP_HANDLE_RESOLUTION_RESPONSE");
        assert_eq!(v["flags"], json!({"raw": 0, "accept": false}));
        assert_eq!(v["policy"]["name"], "Round Robin");
        assert_eq!(v["operation_error"], Value::Null);
        let pes = v["pool_elements"].as_array().unwrap();
        assert_eq!(pes.len(), 2);
        assert_eq!(pes[0]["home_server_id"], "0x11223344");
        assert_eq!(pes[1]["pe_id"], "0x5e6f7081");
        assert_eq!(
            pes[1]["user_transport"]["addresses"],
            json!(["192.0.2.11", "198.51.100.11"])
        );
    }

    #[test]
    fn unknown_pool_handle_error_has_hex_info() {
        let v = asap(
            "06 00 00 1c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0c 00 08 00 09 00 04",
        );
        assert_eq!(v["pool_elements"], json!([]));
        assert_eq!(
            v["operation_error"]["causes"],
            json!([{"code": 9, "name": "Unknown Pool Handle", "info": ""}])
        );
    }

    #[test]
    fn presence_and_handle_update() {
        let v = enrp(PRESENCE);
        assert_eq!(v["type"], "ENRP_PRESENCE");
        assert_eq!(v["flags"], json!({"raw": 0, "reply_required": false}));
        assert_eq!(v["sender_server_id"], "0x11223344");
        assert_eq!(v["receiver_server_id"], "0x00000000");
        assert_eq!(v["pe_checksum"], "0x5672");
        assert_eq!(v["server_info"]["server_id"], "0x11223344");
        assert_eq!(v["server_info"]["transport"]["port"], 9901);

        let v = enrp(HANDLE_UPDATE);
        assert_eq!(v["type"], "ENRP_HANDLE_UPDATE");
        assert_eq!(v["update_action"], json!({"code": 0, "name": "ADD_PE"}));
        assert_eq!(v["pool_handle"]["text"], "EchoService");
        let asap_t = &v["pool_element"]["asap_transport"];
        assert_eq!(asap_t["port"], 50000);
        assert_eq!(asap_t["transport_use"]["name"], "data_only");
    }

    #[test]
    fn short_messages() {
        let v = asap("07 01 00 17 11 22 33 44 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00");
        assert_eq!(v["type"], "ASAP_ENDPOINT_KEEP_ALIVE");
        assert_eq!(v["flags"], json!({"raw": 1, "home": true}));
        assert_eq!(v["server_id"], "0x11223344");
        assert_eq!(v["pe_id"], Value::Null);

        let v = asap("0a 00 00 18 11 22 33 44 00 04 00 10 0f 17 00 00 00 01 00 08 c0 00 02 01");
        assert_eq!(v["transports"][0]["port"], 3863);

        let v = enrp("02 01 00 0c 55 66 77 88 11 22 33 44");
        assert_eq!(v["type"], "ENRP_HANDLE_TABLE_REQUEST");
        assert_eq!(v["flags"], json!({"raw": 1, "own_children_only": true}));

        let v = enrp("07 00 00 10 55 66 77 88 00 00 00 00 99 aa bb cc");
        assert_eq!(v["target_server_id"], "0x99aabbcc");
    }

    #[test]
    fn undefined_flag_bits_show_in_raw() {
        let v = asap("05 80 00 13 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00");
        assert_eq!(v["flags"], json!({"raw": 0x80, "subscribe": false}));
        // Rendering the decoded message alone shows what it encodes with.
        let b = h("05 80 00 13 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00");
        let m = AsapMessage::parse(&b).unwrap();
        assert_eq!(asap_message(&m)["flags"]["raw"], 0);
    }

    #[test]
    fn skip_and_report_parameters_are_listed() {
        // Handle Resolution with an unknown 0xc123 parameter after the handle.
        let v = asap("05 00 00 18 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 c1 23 00 04");
        assert_eq!(v["unrecognized_parameters"], json!(["c1230004"]));
    }

    #[test]
    fn built_messages_render_all_fields() {
        use rserpool_wire::asap::{BusinessCard, Cookie};
        let addrs = ["10.0.0.1".parse().unwrap()];
        let opaque = Transport::opaque(b"\x01\x02");
        let dccp = Transport::dccp(5000, 42, &addrs);
        let pes = [
            PoolElement {
                id: PeId(7),
                home_server: ServerId(0),
                registration_life: u32::MAX,
                user_transport: dccp,
                policy: Policy::LeastUsedDegradationDpf {
                    load: 1,
                    load_degradation: 2,
                    load_dpf: 3,
                    distance: 4,
                }
                .into(),
                asap_transport: Some(Transport::sctp(
                    1234,
                    TransportUse::DATA_PLUS_CONTROL,
                    &addrs,
                )),
            },
            PoolElement {
                id: PeId(8),
                home_server: ServerId(9),
                registration_life: 5000,
                user_transport: opaque,
                policy: PolicyParam::Unknown {
                    policy_type: rserpool_wire::PolicyType(0x1234_5678),
                    data: b"\xab",
                },
                asap_transport: None,
            },
        ];
        let m = AsapMessage::BusinessCard(BusinessCard {
            pool_handle: PoolHandle::new(b"\x00\x01").unwrap(),
            policy: None,
            elements: Seq::from_items(&pes),
        });
        // Through the wire and back, as poolctl sees it.
        let bytes = m.to_vec().unwrap();
        let v = decode(Protocol::Asap, &bytes).unwrap();
        assert_eq!(v, {
            let mut direct = asap_message(&m);
            direct["length"] = bytes.len().into();
            direct
        });
        assert_eq!(v["pool_handle"], json!({"text": null, "hex": "0001"}));
        let e = &v["pool_elements"];
        assert_eq!(e[0]["registration_life_infinite"], true);
        assert_eq!(
            e[0]["user_transport"],
            json!({"kind": "dccp", "type": "0x0003", "port": 5000, "reserved": 0,
                   "service_code": 42, "addresses": ["10.0.0.1"]})
        );
        assert_eq!(
            e[0]["policy"],
            json!({"name": "Least Used with Degradation and DPF", "type": "0xb0002003",
                   "load": 1, "load_degradation": 2, "load_dpf": 3, "distance": 4})
        );
        assert_eq!(
            e[1]["user_transport"],
            json!({"kind": "opaque", "type": "0x0010", "opaque": "0102"})
        );
        assert_eq!(
            e[1]["policy"],
            json!({"name": "unknown", "type": "0x12345678", "data": "ab"})
        );

        let c = AsapMessage::Cookie(Cookie {
            cookie: b"\xde\xad",
        });
        assert_eq!(asap_message(&c)["cookie"], "dead");
    }

    #[test]
    fn single_parameters() {
        let bytes = h("00 0e 00 08 1a 2b 3c 4d 80 3f 00 08 ff ff ff ff 81 23 00 05 01 00 00 00");
        let mut rest = &bytes[..];
        let mut out = Vec::new();
        while let Some((p, r)) = Param::parse_prefix(rest).unwrap() {
            out.push(param(&p));
            rest = r;
        }
        assert_eq!(
            out,
            vec![
                json!({"param": "PE Identifier", "type": "0x000e", "pe_id": "0x1a2b3c4d"}),
                json!({"param": "Handle Resolution Option", "type": "0x803f",
                       "handle_resolution_option": {"items": 4294967295u32, "as_many_as_possible": true}}),
                json!({"param": "Unknown Parameter", "type": "0x8123",
                       "unknown": {"type": "0x8123", "action": "Skip", "value": "01"}}),
            ]
        );
    }

    #[test]
    fn message_dispatches_by_protocol() {
        let b = h(PRESENCE);
        let m = Message::parse(Protocol::Enrp, &b).unwrap();
        assert_eq!(message(&m)["type"], "ENRP_PRESENCE");
    }
}
