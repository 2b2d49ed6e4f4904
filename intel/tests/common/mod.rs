//! Shared inputs of the integration tests: the design note's worked example
//! (provider A, key fingerprint fa8c7626…, 2025-03-01T12:00:00Z) and helpers
//! to edit a bundle's JSON.
#![allow(dead_code)]

use ringfence_intel::{ExportIndicator, ExportMeta, ImportPolicy, Producer, Tlp};
use serde_json::Value;

/// 2025-03-01T12:00:00Z.
pub const T0: f64 = 1_740_830_400.0;
pub const DAY: f64 = 86_400.0;
pub const KEY_ID: [u8; 16] = [
    0xfa, 0x8c, 0x76, 0x26, 0x02, 0x41, 0x1c, 0xb2, 0x5a, 0x36, 0x56, 0x40, 0xfe, 0x9a, 0x3c, 0x01,
];
pub const PRODUCER_ID: &str = "identity--3dff565e-7265-4139-9cb0-eceed191fca9";
pub const SIGHTER_ID: &str = "identity--9a7c0e52-1d3b-4f6a-8e2d-5c4b3a291807";

pub fn unhex<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

pub fn producer() -> Producer {
    Producer {
        identity_id: PRODUCER_ID.into(),
        name: "Provider A trust & safety".into(),
    }
}

pub fn sighter() -> Producer {
    Producer {
        identity_id: SIGHTER_ID.into(),
        name: "Provider B".into(),
    }
}

pub fn meta() -> ExportMeta {
    ExportMeta {
        producer: producer(),
        key_id: KEY_ID,
        created: T0,
        valid_from: T0 - 12.0 * 3600.0,
        valid_until: T0 + 30.0 * DAY - 12.0 * 3600.0,
        tlp: Tlp::Amber,
    }
}

/// The note's two indicators (payment card, template band) of one
/// operation, and a device of another.
pub fn indicators() -> Vec<ExportIndicator> {
    vec![
        ExportIndicator {
            kind: "payment".into(),
            hmac: unhex("0e80f853a56caed202636eb7e5735eebe7162c535982c177668e13bb9df99312"),
            confidence: 85,
            campaign: 0x7f3a,
            first_seen: T0 - 9.5 * DAY,
            last_seen: T0 - 0.5 * DAY,
        },
        ExportIndicator {
            kind: "template".into(),
            hmac: unhex("cf4917ba778ac2c45580c51e3391608128955acf4b0b93e75e0f0fcaa40fbb16"),
            confidence: 50,
            campaign: 0x7f3a,
            first_seen: T0 - 5.0 * DAY,
            last_seen: T0 - 0.25 * DAY,
        },
        ExportIndicator {
            kind: "ja4+ip24".into(),
            hmac: [0x5a; 32],
            confidence: 15,
            campaign: 99,
            first_seen: T0 - 2.0 * DAY + 0.125,
            last_seen: T0 - DAY,
        },
    ]
}

pub fn policy() -> ImportPolicy {
    ImportPolicy::new(KEY_ID, T0 + 60.0)
}

/// The bundle's objects.
pub fn objects(text: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(text).unwrap();
    v["objects"].as_array().unwrap().clone()
}

/// The index of the first object of `object_type`.
pub fn first(objects: &[Value], object_type: &str) -> usize {
    objects
        .iter()
        .position(|o| o["type"] == object_type)
        .unwrap_or_else(|| panic!("no {object_type}"))
}

/// The bundle with its objects edited by `edit`.
pub fn edit(text: &str, edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap();
    edit(v["objects"].as_array_mut().unwrap());
    serde_json::to_string(&v).unwrap()
}
