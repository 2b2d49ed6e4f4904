//! Every rejected bundle, with a message that says what is wrong and where:
//! the object (index and id) and the property.

mod common;

use common::*;
use ringfence_intel::*;
use serde_json::{json, Value};

fn export() -> String {
    export_bundle(&meta(), &indicators()).unwrap()
}

/// The error of parsing `text` under `policy`, whose message must contain
/// every one of `parts`.
fn rejected(
    text: &str,
    policy: &ImportPolicy,
    kind: BundleErrorKind,
    parts: &[&str],
) -> BundleError {
    let err = parse_bundle(text, policy).expect_err("accepted");
    let message = err.to_string();
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
    assert_eq!(err.kind(), kind, "{message}");
    err
}

/// Edits the first object of `object_type` in the export and expects the
/// error at that object.
fn rejected_edit(
    object_type: &str,
    change: impl FnOnce(&mut Value),
    kind: BundleErrorKind,
    parts: &[&str],
) {
    let mut at = (0, String::new());
    let text = edit(&export(), |objects| {
        let i = first(objects, object_type);
        change(&mut objects[i]);
        at = (i, objects[i]["id"].as_str().unwrap_or("").to_owned());
    });
    let err = rejected(&text, &policy(), kind, parts);
    assert_eq!(err.object_index(), Some(at.0), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("object {} ({}): ", at.0, at.1)),
        "{err}"
    );
}

#[test]
fn malformed_json() {
    let err = rejected(
        r#"{"type": "bundle", "objects": ["#,
        &policy(),
        BundleErrorKind::Json,
        &["not valid JSON", "line 1"],
    );
    assert_eq!(err.object_index(), None);
}

#[test]
fn not_a_bundle() {
    let p = policy();
    rejected(
        "[1, 2]",
        &p,
        BundleErrorKind::NotABundle,
        &["not a STIX bundle", "not an object"],
    );
    rejected(
        r#"{"type": "report", "id": "report--2f1c7f5e-7a5b-4e1d-9d3c-1a2b3c4d5e6f"}"#,
        &p,
        BundleErrorKind::NotABundle,
        &["type \"report\", not \"bundle\""],
    );
    rejected(
        r#"{"type": "bundle", "id": "bundle--12"}"#,
        &p,
        BundleErrorKind::NotABundle,
        &["id \"bundle--12\""],
    );
    rejected(
        r#"{"type": "bundle", "id": "bundle--2f1c7f5e-7a5b-4e1d-9d3c-1a2b3c4d5e6f", "objects": {}}"#,
        &p,
        BundleErrorKind::NotABundle,
        &["objects is not an array"],
    );
    let text = edit(&export(), |objects| objects.push(json!("indicator")));
    rejected(
        &text,
        &p,
        BundleErrorKind::Property,
        &["object 16: is not a JSON object"],
    );
}

#[test]
fn oversized_input_is_rejected_before_parsing() {
    let text = export();
    let small = ImportPolicy {
        max_bytes: text.len() - 1,
        ..policy()
    };
    rejected(
        &text,
        &small,
        BundleErrorKind::TooLarge,
        &[&format!("{} bytes", text.len()), "limit"],
    );
    // Not even looked at: garbage over the limit is "too large", not "not JSON".
    let garbage = "x".repeat(101);
    rejected(
        &garbage,
        &ImportPolicy {
            max_bytes: 100,
            ..policy()
        },
        BundleErrorKind::TooLarge,
        &["101 bytes"],
    );
    assert!(parse_bundle(
        &text,
        &ImportPolicy {
            max_bytes: text.len(),
            ..policy()
        }
    )
    .is_ok());
    let default = ImportPolicy::new(KEY_ID, T0);
    assert_eq!(
        (
            default.max_bytes,
            default.max_objects,
            default.max_skew_secs
        ),
        (16 << 20, 100_000, 300.0)
    );
}

#[test]
fn too_many_objects() {
    let few = ImportPolicy {
        max_objects: 15,
        ..policy()
    };
    rejected(
        &export(),
        &few,
        BundleErrorKind::TooManyObjects,
        &["16 objects", "limit of 15"],
    );
    assert!(parse_bundle(
        &export(),
        &ImportPolicy {
            max_objects: 16,
            ..policy()
        }
    )
    .is_ok());
}

#[test]
fn another_consortium_key_in_an_sco() {
    let other = ImportPolicy {
        key_id: [0x01; 16],
        ..policy()
    };
    let err = rejected(
        &export(),
        &other,
        BundleErrorKind::ForeignKey,
        &[
            "object 6 (x-ringfence-fingerprint--dd595864-b97e-5fec-b94a-477123f0eb2d): key_id \
             fa8c762602411cb25a365640fe9a3c01 is not this consortium's key (expected 01010101010101010101010101010101)",
        ],
    );
    assert_eq!(err.property(), Some("key_id"));
    assert_eq!(
        err.object_id(),
        Some("x-ringfence-fingerprint--dd595864-b97e-5fec-b94a-477123f0eb2d")
    );
}

#[test]
fn another_consortium_key_in_a_pattern() {
    let revocation = revocation_bundle(&meta(), &indicators(), T0 + 1.0).unwrap();
    let other = ImportPolicy {
        key_id: [0x01; 16],
        ..policy()
    };
    let id = indicator_id(PRODUCER_ID, "payment", &indicators()[0].hmac);
    let err = rejected(
        &revocation,
        &other,
        BundleErrorKind::ForeignKey,
        &[&format!("object 2 ({id}): pattern: key_id fa8c762602411cb25a365640fe9a3c01 is not this consortium's key")],
    );
    assert_eq!(err.property(), Some("pattern"));
    // A pattern whose key differs from its SCO's.
    rejected_edit(
        "indicator",
        |o| {
            let p = o["pattern"]
                .as_str()
                .unwrap()
                .replace("fa8c7626", "00000000");
            o["pattern"] = p.into();
        },
        BundleErrorKind::ForeignKey,
        &["pattern: key_id 00000000", "expected fa8c7626"],
    );
}

#[test]
fn from_the_future() {
    let early = ImportPolicy {
        now: T0 - 301.0,
        ..policy()
    };
    rejected(
        &export(),
        &early,
        BundleErrorKind::FromTheFuture,
        &[
            "object 0 (identity--",
            "created 2025-03-01T12:00:00.000Z is from the future",
            "allowed skew 300 s",
        ],
    );
    // Within the skew it is accepted.
    assert!(parse_bundle(
        &export(),
        &ImportPolicy {
            now: T0 - 299.0,
            ..policy()
        }
    )
    .is_ok());
    rejected_edit(
        "indicator",
        |o| o["valid_from"] = "2031-01-01T00:00:00Z".into(),
        BundleErrorKind::FromTheFuture,
        &["valid_from 2031-01-01T00:00:00.000Z is from the future"],
    );
    rejected_edit(
        "campaign",
        |o| o["modified"] = "2030-01-01T00:00:00.000Z".into(),
        BundleErrorKind::FromTheFuture,
        &["modified 2030-01-01T00:00:00.000Z is from the future"],
    );
}

#[test]
fn sco_id_not_the_uuid5_of_its_properties() {
    rejected_edit(
        "x-ringfence-fingerprint",
        |o| o["hmac"] = "1".repeat(64).into(),
        BundleErrorKind::Id,
        &[
            "id is not the UUIDv5 of its properties",
            "expected x-ringfence-fingerprint--",
        ],
    );
    rejected_edit(
        "x-ringfence-fingerprint",
        |o| o["hmac"] = "0E80".into(),
        BundleErrorKind::Property,
        &["hmac \"0E80\" is not 64 lower-case hex digits"],
    );
    rejected_edit(
        "x-ringfence-fingerprint",
        |o| o["kind"] = "Payment Card".into(),
        BundleErrorKind::Property,
        &["kind \"Payment Card\" is not a kind name"],
    );
    rejected_edit(
        "x-ringfence-fingerprint",
        |o| {
            o.as_object_mut().unwrap().remove("key_id");
        },
        BundleErrorKind::Property,
        &["key_id is missing"],
    );
    rejected_edit(
        "indicator",
        |o| o["id"] = "campaign--40611c23-169d-4631-868f-01ea05b3d9dd".into(),
        BundleErrorKind::Id,
        &["id \"campaign--40611c23-169d-4631-868f-01ea05b3d9dd\" is not \"indicator--<uuid>\""],
    );
}

#[test]
fn timestamps_of_the_wrong_form() {
    rejected_edit(
        "indicator",
        |o| o["created"] = "2025-03-01T12:00:00Z".into(),
        BundleErrorKind::Timestamp,
        &["created \"2025-03-01T12:00:00Z\" lacks milliseconds"],
    );
    rejected_edit(
        "campaign",
        |o| o["modified"] = "2025-03-01T12:00:00.1Z".into(),
        BundleErrorKind::Timestamp,
        &["modified \"2025-03-01T12:00:00.1Z\" lacks milliseconds"],
    );
    rejected_edit(
        "indicator",
        |o| o["valid_until"] = "2025-03-31".into(),
        BundleErrorKind::Timestamp,
        &["valid_until \"2025-03-31\" is not an RFC 3339 UTC timestamp"],
    );
    rejected_edit(
        "indicator",
        |o| o["valid_from"] = "2025-03-01T00:00:00+01:00".into(),
        BundleErrorKind::Timestamp,
        &["valid_from", "must end in Z"],
    );
    rejected_edit(
        "indicator",
        |o| o["created"] = json!(1740830400),
        BundleErrorKind::Property,
        &["created is not a string: 1740830400"],
    );
    rejected_edit(
        "indicator",
        |o| o["modified"] = "2025-02-01T00:00:00.000Z".into(),
        BundleErrorKind::Interval,
        &["modified 2025-02-01T00:00:00.000Z is before created 2025-03-01T12:00:00.000Z"],
    );
    // More than three fraction digits are fine.
    let text = edit(&export(), |objects| {
        let i = first(objects, "indicator");
        objects[i]["modified"] = "2025-03-01T12:00:00.000250Z".into();
    });
    assert_eq!(
        parse_bundle(&text, &policy()).unwrap().indicators[0].modified,
        T0 + 0.000_25
    );
}

#[test]
fn validity_and_confidence() {
    rejected_edit(
        "indicator",
        |o| o["valid_until"] = o["valid_from"].clone(),
        BundleErrorKind::Interval,
        &["valid_until 2025-03-01T00:00:00.000Z is not later than valid_from 2025-03-01T00:00:00.000Z"],
    );
    rejected_edit(
        "indicator",
        |o| o["confidence"] = json!(101),
        BundleErrorKind::Confidence,
        &["confidence 101 is not an integer in 0..=100"],
    );
    rejected_edit(
        "indicator",
        |o| o["confidence"] = json!(-1),
        BundleErrorKind::Confidence,
        &["confidence -1"],
    );
    rejected_edit(
        "indicator",
        |o| o["confidence"] = json!(85.5),
        BundleErrorKind::Confidence,
        &["confidence 85.5"],
    );
    rejected_edit(
        "indicator",
        |o| o["confidence"] = json!("high"),
        BundleErrorKind::Confidence,
        &["confidence \"high\""],
    );
    rejected_edit(
        "indicator",
        |o| o["revoked"] = json!("yes"),
        BundleErrorKind::Property,
        &["revoked \"yes\" is not a boolean"],
    );
}

#[test]
fn ringfence_patterns_of_another_shape() {
    let original = export();
    let pattern = objects(&original)[9]["pattern"]
        .as_str()
        .unwrap()
        .to_owned();
    for (changed, why) in [
        (pattern.replacen(" AND ", " OR ", 1), "joined by AND"),
        (
            pattern.replace("]", "] WITHIN 5 SECONDS"),
            "one observation",
        ),
        (
            pattern.replace(
                "x-ringfence-fingerprint:hmac",
                "x-ringfence-fingerprint:raw",
            ),
            "not on kind, hmac or key_id",
        ),
        (
            pattern.replacen(
                "AND x-ringfence-fingerprint:key_id = 'fa8c762602411cb25a365640fe9a3c01'",
                "",
                1,
            ),
            "three",
        ),
        (
            pattern.replace("= 'payment'", "= 'payment"),
            "unterminated string",
        ),
        (pattern.replace(" = '0e80", " != '0e80"), "comparison 2"),
    ] {
        rejected_edit(
            "indicator",
            |o| o["pattern"] = changed.clone().into(),
            BundleErrorKind::Pattern,
            &["pattern is not the ringfence form", why],
        );
    }
    rejected_edit(
        "indicator",
        |o| o["pattern"] = pattern.replace("'payment'", "'Payment'").into(),
        BundleErrorKind::Property,
        &["pattern: kind \"Payment\" is not a kind name"],
    );
    rejected_edit(
        "indicator",
        |o| o["pattern"] = pattern.replace("'0e80f853", "'0e80").into(),
        BundleErrorKind::Property,
        &[
            "pattern: hmac \"0e80a56c",
            "is not 64 lower-case hex digits",
        ],
    );
    rejected_edit(
        "indicator",
        |o| {
            o.as_object_mut().unwrap().remove("pattern");
        },
        BundleErrorKind::Property,
        &["pattern is missing (required of an indicator)"],
    );
}

#[test]
fn indicators_must_name_their_producer() {
    rejected_edit(
        "indicator",
        |o| {
            o.as_object_mut().unwrap().remove("created_by_ref");
        },
        BundleErrorKind::Property,
        &["created_by_ref is missing: a ringfence indicator must name its producer"],
    );
    rejected_edit(
        "indicator",
        |o| o["created_by_ref"] = "provider-a".into(),
        BundleErrorKind::Id,
        &["created_by_ref \"provider-a\" is not \"identity--<uuid>\""],
    );
}

#[test]
fn versions_from_another_creator_conflict() {
    let revocation = revocation_bundle(&meta(), &indicators()[..1], T0 + 1.0).unwrap();
    let mut objects = objects(&export());
    let mut forged = common::objects(&revocation)[2].clone();
    forged["created_by_ref"] = SIGHTER_ID.into();
    objects.push(forged.clone());
    let text = json!({"type": "bundle", "id": "bundle--2f1c7f5e-7a5b-4e1d-9d3c-1a2b3c4d5e6f", "objects": objects});
    let err = rejected(
        &text.to_string(),
        &policy(),
        BundleErrorKind::Conflict,
        &[
            "object 16",
            &format!("created_by_ref {SIGHTER_ID} differs from {PRODUCER_ID} of object 9"),
        ],
    );
    assert_eq!(err.property(), Some("created_by_ref"));
    forged["created_by_ref"] = PRODUCER_ID.into();
    forged["created"] = "2025-03-01T11:00:00.000Z".into();
    objects.pop();
    objects.push(forged);
    let text = json!({"type": "bundle", "id": "bundle--2f1c7f5e-7a5b-4e1d-9d3c-1a2b3c4d5e6f", "objects": objects});
    rejected(
        &text.to_string(),
        &policy(),
        BundleErrorKind::Conflict,
        &["created 2025-03-01T11:00:00.000Z differs"],
    );
}

#[test]
fn tlp_markings_must_match_their_ids() {
    rejected_edit(
        "marking-definition",
        |o| o["extensions"][TLP_2_0_EXTENSION_ID]["tlp_2_0"] = "clear".into(),
        BundleErrorKind::Property,
        &["TLP marking definition says \"clear\" but its id is that of \"amber\""],
    );
    rejected_edit(
        "campaign",
        |o| {
            o["object_marking_refs"] =
                "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421".into()
        },
        BundleErrorKind::Property,
        &["object_marking_refs is not an array of ids"],
    );
}

#[test]
fn malformed_sightings() {
    let s = Sighting {
        indicator_id: indicator_id(PRODUCER_ID, "payment", &[1; 32]),
        count: 3,
        first_seen: T0,
        last_seen: T0,
    };
    let text = sighting_bundle(&sighter(), T0, Tlp::Amber, &[s]).unwrap();
    for (change, kind, why) in [
        (
            json!({"count": 1_000_000_000u64}),
            BundleErrorKind::Property,
            "count 1000000000 is not an integer in 0..=999999999",
        ),
        (json!({"count": -3}), BundleErrorKind::Property, "count -3"),
        (
            json!({"last_seen": "2025-02-01T00:00:00Z"}),
            BundleErrorKind::Interval,
            "last_seen 2025-02-01T00:00:00.000Z is before first_seen",
        ),
        (
            json!({"sighting_of_ref": "indicator"}),
            BundleErrorKind::Id,
            "sighting_of_ref \"indicator\" is not",
        ),
        (
            json!({"sighting_of_ref": null}),
            BundleErrorKind::Property,
            "sighting_of_ref is not a string",
        ),
        (
            json!({"created_by_ref": null}),
            BundleErrorKind::Property,
            "created_by_ref is not a string",
        ),
    ] {
        let bad = edit(&text, |objects| {
            for (k, v) in change.as_object().unwrap() {
                objects[2][k] = v.clone();
            }
        });
        let err = rejected(&bad, &policy(), kind, &[why]);
        assert_eq!(err.object_index(), Some(2));
    }
    let bad = edit(&text, |objects| {
        objects[2].as_object_mut().unwrap().remove("created_by_ref");
    });
    rejected(
        &bad,
        &policy(),
        BundleErrorKind::Property,
        &["created_by_ref is missing: a sighting must name its sighter"],
    );
}
