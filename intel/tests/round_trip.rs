//! Export, revocation and sighting bundles read back by `parse_bundle`, field
//! by field; patterns of other shapes skipped, not rejected.

mod common;

use common::*;
use ringfence_intel::*;
use serde_json::{json, Value};

fn ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

#[test]
fn export_round_trips_every_field() {
    let m = meta();
    let inputs = indicators();
    let parsed = parse_bundle(&export_bundle(&m, &inputs).unwrap(), &policy()).unwrap();
    assert_eq!(parsed.tlp, Some(Tlp::Amber));
    assert!(parsed.sightings.is_empty());
    assert!(parsed.skipped.is_empty());
    assert_eq!(parsed.indicators.len(), inputs.len());
    for (got, input) in parsed.indicators.iter().zip(&inputs) {
        let expected = ImportedIndicator {
            id: indicator_id(PRODUCER_ID, &input.kind, &input.hmac),
            producer: PRODUCER_ID.into(),
            producer_name: Some("Provider A trust & safety".into()),
            kind: input.kind.clone(),
            hmac: input.hmac,
            confidence: input.confidence,
            created: T0,
            modified: T0,
            valid_from: m.valid_from,
            valid_until: Some(m.valid_until),
            revoked: false,
            campaign: Some(campaign_id(PRODUCER_ID, input.campaign)),
        };
        assert_eq!(got, &expected);
    }
}

#[test]
fn times_keep_millisecond_precision() {
    let m = ExportMeta {
        created: T0 + 0.123_4,
        valid_from: T0 - 0.5,
        valid_until: T0 + 1.001,
        ..meta()
    };
    let parsed = parse_bundle(&export_bundle(&m, &indicators()).unwrap(), &policy()).unwrap();
    let ind = &parsed.indicators[0];
    assert_eq!(ind.created, ms(T0 + 0.123));
    assert_eq!(ind.modified, ind.created);
    assert_eq!(ind.valid_from, T0 - 0.5);
    assert_eq!(ind.valid_until, Some(ms(T0 + 1.001)));
}

#[test]
fn every_tlp_level_round_trips() {
    for tlp in Tlp::ALL {
        let text = export_bundle(&ExportMeta { tlp, ..meta() }, &indicators()).unwrap();
        assert_eq!(parse_bundle(&text, &policy()).unwrap().tlp, Some(tlp));
    }
}

#[test]
fn tlp_1_0_markings_are_read() {
    let text = export_bundle(&meta(), &indicators()).unwrap();
    let white = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9";
    let text = edit(&text, |objects| {
        let i = first(objects, "marking-definition");
        objects[i] = json!({
            "type": "marking-definition", "spec_version": "2.1", "id": white,
            "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp", "name": "TLP:WHITE",
            "definition": {"tlp": "white"}
        });
        for o in objects.iter_mut() {
            if o.get("object_marking_refs").is_some() {
                o["object_marking_refs"] = json!([white]);
            }
        }
    });
    assert_eq!(
        parse_bundle(&text, &policy()).unwrap().tlp,
        Some(Tlp::Clear)
    );
    // The most restrictive level referenced wins.
    let text = edit(&text, |objects| {
        let i = first(objects, "indicator");
        objects[i]["object_marking_refs"] =
            json!(["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]);
    });
    assert_eq!(parse_bundle(&text, &policy()).unwrap().tlp, Some(Tlp::Red));
}

#[test]
fn revocation_round_trips() {
    let m = meta();
    let inputs = indicators();
    let revoked_at = T0 + 4.0 * DAY + 0.25;
    let now = ImportPolicy::new(KEY_ID, revoked_at);
    let export = parse_bundle(&export_bundle(&m, &inputs).unwrap(), &now).unwrap();
    let revocation = revocation_bundle(&m, &inputs[..2], revoked_at).unwrap();
    let parsed = parse_bundle(&revocation, &now).unwrap();
    assert_eq!(parsed.tlp, Some(Tlp::Amber));
    assert_eq!(parsed.indicators.len(), 2);
    for (got, original) in parsed.indicators.iter().zip(&export.indicators) {
        let expected = ImportedIndicator {
            modified: revoked_at,
            revoked: true,
            campaign: None, // a revocation carries no relationships
            ..original.clone()
        };
        assert_eq!(got, &expected);
    }

    // An original and its revoked version in one bundle: the later wins,
    // whichever comes first.
    let mut combined = objects(&export_bundle(&m, &inputs).unwrap());
    combined.extend(
        objects(&revocation)
            .into_iter()
            .filter(|o| o["type"] == "indicator"),
    );
    let mut reversed = combined.clone();
    reversed.reverse();
    for objects in [combined, reversed] {
        let text = json!({"type": "bundle", "id": "bundle--2f1c7f5e-7a5b-4e1d-9d3c-1a2b3c4d5e6f", "objects": objects});
        let parsed = parse_bundle(&text.to_string(), &now).unwrap();
        assert_eq!(parsed.indicators.len(), 3);
        let revoked: Vec<bool> = parsed.indicators.iter().map(|i| i.revoked).collect();
        let ids: Vec<&str> = parsed.indicators.iter().map(|i| i.id.as_str()).collect();
        for (i, input) in inputs.iter().enumerate() {
            let id = indicator_id(PRODUCER_ID, &input.kind, &input.hmac);
            let k = ids.iter().position(|x| *x == id).unwrap();
            assert_eq!(revoked[k], i < 2, "{id}");
            assert_eq!(
                parsed.indicators[k].campaign,
                Some(campaign_id(PRODUCER_ID, input.campaign))
            );
        }
    }
}

#[test]
fn sighting_round_trips() {
    let ids: Vec<String> = indicators()
        .iter()
        .map(|i| indicator_id(PRODUCER_ID, &i.kind, &i.hmac))
        .collect();
    let sightings = [
        Sighting {
            indicator_id: ids[0].clone(),
            count: 37,
            first_seen: T0 + 100.0,
            last_seen: T0 + 200.5,
        },
        Sighting {
            indicator_id: ids[2].clone(),
            count: 5_000_000_000,
            first_seen: T0,
            last_seen: T0,
        },
        Sighting {
            indicator_id: ids[1].clone(),
            count: 0,
            first_seen: T0 - DAY,
            last_seen: T0,
        },
    ];
    let text = sighting_bundle(&sighter(), T0 + 300.0, Tlp::AmberStrict, &sightings).unwrap();
    let parsed = parse_bundle(&text, &ImportPolicy::new(KEY_ID, T0 + 300.0)).unwrap();
    assert!(parsed.indicators.is_empty() && parsed.skipped.is_empty());
    assert_eq!(parsed.tlp, Some(Tlp::AmberStrict));
    let expected: Vec<ParsedSighting> = sightings
        .iter()
        .map(|s| ParsedSighting {
            sighting_of: s.indicator_id.clone(),
            sighter: SIGHTER_ID.into(),
            count: s.count.min(MAX_SIGHTING_COUNT),
            first_seen: Some(s.first_seen),
            last_seen: Some(s.last_seen),
        })
        .collect();
    assert_eq!(parsed.sightings, expected);
    assert_eq!(parsed.sightings[1].count, 999_999_999);
}

#[test]
fn other_pattern_shapes_are_skipped_not_rejected() {
    let text = export_bundle(&meta(), &indicators()).unwrap();
    let mut skipped_ids = Vec::new();
    let text = edit(&text, |objects| {
        let i = first(objects, "indicator");
        objects[i]["pattern"] = "[ipv4-addr:value = '1.2.3.4']".into();
        objects[i + 1]["pattern_type"] = "sigma".into();
        objects[i + 1]["pattern"] = "title: not ours".into();
        skipped_ids = vec![objects[i]["id"].clone(), objects[i + 1]["id"].clone()];
        // Other objects and properties that are none of ringfence's business.
        objects.push(json!({
            "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": "[file:hashes.'SHA-256' = 'aa'] OR [domain-name:value = 'example.invalid']",
            "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"
        }));
        objects.push(json!({
            "type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": "x", "is_family": false, "extensions": {"extension-definition--1234": {}}
        }));
    });
    let parsed = parse_bundle(&text, &policy()).unwrap();
    let mut expected: Vec<String> = skipped_ids
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    expected.push("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into());
    assert_eq!(parsed.skipped, expected);
    assert_eq!(parsed.indicators.len(), 1);
    assert_eq!(parsed.indicators[0].kind, "ja4+ip24");
}

#[test]
fn patterns_in_any_order_and_spacing_are_read() {
    let text = export_bundle(&meta(), &indicators()[..1]).unwrap();
    let text = edit(&text, |objects| {
        let i = first(objects, "indicator");
        objects[i]["pattern"] = Value::from(
            "[x-ringfence-fingerprint:key_id='fa8c762602411cb25a365640fe9a3c01'   AND\n\
             x-ringfence-fingerprint:hmac = '0e80f853a56caed202636eb7e5735eebe7162c535982c177668e13bb9df99312' AND \
             x-ringfence-fingerprint:kind= 'payment' ]",
        );
    });
    let parsed = parse_bundle(&text, &policy()).unwrap();
    assert_eq!(parsed.indicators[0].kind, "payment");
    assert_eq!(parsed.indicators[0].hmac, indicators()[0].hmac);
}

#[test]
fn absent_optional_properties_take_their_defaults() {
    let text = export_bundle(&meta(), &indicators()[..1]).unwrap();
    let text = edit(&text, |objects| {
        let i = first(objects, "indicator");
        let o = objects[i].as_object_mut().unwrap();
        o.remove("confidence");
        o.remove("valid_until");
        // Without the identity object, the name is unknown; without the
        // relationship, the campaign.
        objects.retain(|o| o["type"] != "relationship" && o["id"] != PRODUCER_ID);
    });
    let parsed = parse_bundle(&text, &policy()).unwrap();
    let ind = &parsed.indicators[0];
    assert_eq!(ind.confidence, DEFAULT_CONFIDENCE);
    assert_eq!(ind.valid_until, None);
    assert_eq!(ind.producer_name, None);
    assert_eq!(ind.campaign, None);

    let s = Sighting {
        indicator_id: ind.id.clone(),
        count: 3,
        first_seen: T0,
        last_seen: T0,
    };
    let text = sighting_bundle(&sighter(), T0, Tlp::Clear, &[s]).unwrap();
    let text = edit(&text, |objects| {
        let o = objects[2].as_object_mut().unwrap();
        o.remove("count");
        o.remove("first_seen");
        o.remove("last_seen");
    });
    let parsed = parse_bundle(&text, &policy()).unwrap();
    assert_eq!(parsed.sightings[0].count, 1);
    assert_eq!(
        (
            parsed.sightings[0].first_seen,
            parsed.sightings[0].last_seen
        ),
        (None, None)
    );
}

#[test]
fn relationships_of_other_creators_do_not_assign_campaigns() {
    let text = export_bundle(&meta(), &indicators()[..1]).unwrap();
    let text = edit(&text, |objects| {
        let i = first(objects, "relationship");
        objects[i]["created_by_ref"] = SIGHTER_ID.into();
    });
    assert_eq!(
        parse_bundle(&text, &policy()).unwrap().indicators[0].campaign,
        None
    );
}

#[test]
fn an_empty_bundle_is_read() {
    let text = r#"{"type": "bundle", "id": "bundle--2f1c7f5e-7a5b-4e1d-9d3c-1a2b3c4d5e6f"}"#;
    assert_eq!(
        parse_bundle(text, &policy()).unwrap(),
        ParsedBundle::default()
    );
}

#[test]
fn damaged_bundles_are_errors_not_panics() {
    // Every truncation and a few byte substitutions of each kind of bundle:
    // parse_bundle answers Ok or Err, and never panics.
    let s = Sighting {
        indicator_id: indicator_id(PRODUCER_ID, "payment", &[1; 32]),
        count: 3,
        first_seen: T0,
        last_seen: T0,
    };
    let bundles = [
        export_bundle(&meta(), &indicators()).unwrap(),
        revocation_bundle(&meta(), &indicators(), T0 + 1.0).unwrap(),
        sighting_bundle(&sighter(), T0, Tlp::Red, &[s]).unwrap(),
    ];
    let p = policy();
    let mut errors = 0;
    for text in &bundles {
        for i in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
            errors += usize::from(parse_bundle(&text[..i], &p).is_err());
            for c in ["\"", "0", "}", "Z", " ", "'", "é", "]"] {
                let mut damaged = text.clone();
                damaged.replace_range(i..i + 1, c);
                let _ = parse_bundle(&damaged, &p);
            }
        }
    }
    assert!(errors > 0);
}
