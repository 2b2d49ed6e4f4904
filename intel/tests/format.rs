//! The bundle format, object by object, as `docs/design/intel-stix.md` fixes
//! it: ids, the pinned TLP 2.0 and extension-definition objects, and the
//! shape of an export, a revocation and a sighting report.

mod common;

use common::*;
use ringfence_intel::*;
use serde_json::Value;

#[test]
fn sco_id_matches_the_design_note_test_vector() {
    // uuid5(00abedb4-…, '{"hmac":"0e80f853…","key_id":"fa8c7626…","kind":"payment"}'),
    // equal to stix2's _generate_id.
    assert_eq!(
        sco_id(
            "payment",
            "0e80f853a56caed202636eb7e5735eebe7162c535982c177668e13bb9df99312",
            "fa8c762602411cb25a365640fe9a3c01"
        ),
        "x-ringfence-fingerprint--dd595864-b97e-5fec-b94a-477123f0eb2d"
    );
    assert_eq!(
        sco_id(
            "template",
            "cf4917ba778ac2c45580c51e3391608128955acf4b0b93e75e0f0fcaa40fbb16",
            "fa8c762602411cb25a365640fe9a3c01"
        ),
        "x-ringfence-fingerprint--81c3eb85-0a0a-586b-acd7-ef3240143ee5"
    );
    // The export writes those ids.
    let text = export_bundle(&meta(), &indicators()).unwrap();
    assert!(text.contains("\"x-ringfence-fingerprint--dd595864-b97e-5fec-b94a-477123f0eb2d\""));
    assert!(text.contains("\"x-ringfence-fingerprint--81c3eb85-0a0a-586b-acd7-ef3240143ee5\""));
}

fn assert_v4(id: &str, object_type: &str) {
    let uuid = id
        .strip_prefix(object_type)
        .and_then(|r| r.strip_prefix("--"))
        .expect(id);
    let u = uuid::Uuid::parse_str(uuid).expect(id);
    assert_eq!(u.get_version_num(), 4, "{id}");
    assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
    assert_eq!(u.hyphenated().to_string(), uuid, "lower-case: {id}");
}

#[test]
fn indicator_and_campaign_ids_are_stable_v4_and_per_producer() {
    let hmac = [3u8; 32];
    let a = indicator_id(PRODUCER_ID, "payment", &hmac);
    assert_v4(&a, "indicator");
    assert_eq!(a, indicator_id(PRODUCER_ID, "payment", &hmac));
    assert_ne!(a, indicator_id(SIGHTER_ID, "payment", &hmac));
    assert_ne!(a, indicator_id(PRODUCER_ID, "device", &hmac));
    assert_ne!(a, indicator_id(PRODUCER_ID, "payment", &[4u8; 32]));
    let c = campaign_id(PRODUCER_ID, 7);
    assert_v4(&c, "campaign");
    assert_eq!(c, campaign_id(PRODUCER_ID, 7));
    assert_ne!(c, campaign_id(PRODUCER_ID, 8));
    assert_ne!(c, campaign_id(SIGHTER_ID, 7));
}

#[test]
fn tlp_2_0_marking_objects_are_pinned_byte_for_byte() {
    // The OASIS objects (cti-stix-common-objects, objects/marking-definition/),
    // keys in their published order.
    let ext = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";
    let pinned = [
        (
            Tlp::Clear,
            "94868c89-83c2-464b-929b-a1a8aa3c8487",
            "TLP:CLEAR",
            "clear",
        ),
        (
            Tlp::Green,
            "bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            "TLP:GREEN",
            "green",
        ),
        (
            Tlp::Amber,
            "55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            "TLP:AMBER",
            "amber",
        ),
        (
            Tlp::AmberStrict,
            "939a9414-2ddd-4d32-a0cd-375ea402b003",
            "TLP:AMBER+STRICT",
            "amber+strict",
        ),
        (
            Tlp::Red,
            "e828b379-4e03-4974-9ac4-e53a884c97c1",
            "TLP:RED",
            "red",
        ),
    ];
    for (tlp, uuid, name, level) in pinned {
        let expected = format!(
            "{{\"type\":\"marking-definition\",\"spec_version\":\"2.1\",\"id\":\"marking-definition--{uuid}\",\
             \"created\":\"2022-10-01T00:00:00.000Z\",\"name\":\"{name}\",\"extensions\":{{\"{ext}\":\
             {{\"extension_type\":\"property-extension\",\"tlp_2_0\":\"{level}\"}}}}}}"
        );
        assert_eq!(tlp.marking_definition(), expected);
        assert_eq!(tlp.marking_id(), format!("marking-definition--{uuid}"));
        assert_eq!(Tlp::from_marking_id(tlp.marking_id()), Some(tlp));
        // Every bundle carries the object byte for byte.
        let m = ExportMeta { tlp, ..meta() };
        assert!(export_bundle(&m, &indicators())
            .unwrap()
            .contains(&expected));
        assert!(revocation_bundle(&m, &indicators(), T0 + DAY)
            .unwrap()
            .contains(&expected));
        let s = Sighting {
            indicator_id: indicator_id(PRODUCER_ID, "payment", &[1; 32]),
            count: 1,
            first_seen: T0,
            last_seen: T0,
        };
        assert!(sighting_bundle(&sighter(), T0, tlp, &[s])
            .unwrap()
            .contains(&expected));
    }
    // TLP 1.0 (STIX 2.1 §7.2.1.4) is read too, white as clear.
    for (id, tlp) in [
        (
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            Tlp::Clear,
        ),
        (
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            Tlp::Green,
        ),
        (
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            Tlp::Amber,
        ),
        (
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
            Tlp::Red,
        ),
    ] {
        assert_eq!(Tlp::from_marking_id(id), Some(tlp));
    }
    assert_eq!(
        Tlp::from_marking_id("marking-definition--00000000-0000-4000-8000-000000000000"),
        None
    );
    assert!(
        Tlp::Clear < Tlp::Green && Tlp::Amber < Tlp::AmberStrict && Tlp::AmberStrict < Tlp::Red
    );
}

#[test]
fn extension_definition_is_a_constant() {
    assert_eq!(
        extension_definition(),
        concat!(
            r#"{"type":"extension-definition","spec_version":"2.1","#,
            r#""id":"extension-definition--0b6a1f64-8c2e-4d7a-b5f3-2e9c4a7d1b58","#,
            r#""created_by_ref":"identity--5f0c2a8e-4b6d-4e1f-9a3c-7d2b8e6f1a40","#,
            r#""created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","#,
            r#""name":"x-ringfence-fingerprint","#,
            r#""description":"New SCO: HMAC-SHA256 under a consortium key of a value shared by accounts of a distillation operation. kind: the guard kind name (payment, device, ip24, ja4, system, template, ...); hmac: 64 hex; key_id: fingerprint of the consortium key (32 hex). ID contributing properties: kind, hmac, key_id.","#,
            r#""schema":"https://example.invalid/ringfence/intel/schemas/x-ringfence-fingerprint.json","#,
            r#""version":"1.0.0","extension_types":["new-sco"]}"#
        )
    );
    // The schema file it names is the one in the repository.
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/x-ringfence-fingerprint.json")).unwrap();
    assert_eq!(schema["title"], SCO_TYPE);
    assert!(schema["properties"]["extensions"]["required"][0] == EXTENSION_DEFINITION_ID);
}

#[test]
fn export_has_the_design_note_shape() {
    let text = export_bundle(&meta(), &indicators()).unwrap();
    assert_eq!(
        text,
        export_bundle(&meta(), &indicators()).unwrap(),
        "deterministic"
    );
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        bundle.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "objects", "type"]
    );
    assert_v4(bundle["id"].as_str().unwrap(), "bundle");
    let objects = objects(&text);
    let types: Vec<&str> = objects
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "identity",
            "identity",
            "marking-definition",
            "extension-definition",
            "campaign",
            "campaign",
            "x-ringfence-fingerprint",
            "x-ringfence-fingerprint",
            "x-ringfence-fingerprint",
            "indicator",
            "indicator",
            "indicator",
            "relationship",
            "relationship",
            "relationship",
            "grouping",
        ]
    );
    assert_eq!(objects[0]["id"], PRODUCER_ID);
    assert_eq!(objects[0]["name"], "Provider A trust & safety");
    assert_eq!(objects[0]["created"], "2025-03-01T12:00:00.000Z");
    assert_eq!(objects[1]["id"], RINGFENCE_IDENTITY_ID);
    assert_eq!(objects[1]["identity_class"], "system");
    assert_eq!(
        serde_json::to_string(&objects[3]).unwrap().len(),
        extension_definition().len()
    );

    let amber = Tlp::Amber.marking_id();
    let operation = campaign_id(PRODUCER_ID, 0x7f3a);
    let campaign = &objects[4];
    assert_eq!(campaign["id"], operation.as_str());
    assert_eq!(campaign["first_seen"], "2025-02-20T00:00:00Z");
    assert_eq!(campaign["last_seen"], "2025-03-01T06:00:00Z");
    assert_eq!(campaign["confidence"], 85);
    assert_eq!(
        campaign["name"],
        format!("distillation operation op-{}", &operation[10..18])
    );
    assert_eq!(objects[5]["first_seen"], "2025-02-27T12:00:00.125Z");
    assert_eq!(objects[5]["confidence"], 15);

    let sco = &objects[6];
    assert_eq!(
        serde_json::to_string(sco).unwrap(),
        concat!(
            r#"{"extensions":{"extension-definition--0b6a1f64-8c2e-4d7a-b5f3-2e9c4a7d1b58":{"extension_type":"new-sco"}},"#,
            r#""hmac":"0e80f853a56caed202636eb7e5735eebe7162c535982c177668e13bb9df99312","#,
            r#""id":"x-ringfence-fingerprint--dd595864-b97e-5fec-b94a-477123f0eb2d","#,
            r#""key_id":"fa8c762602411cb25a365640fe9a3c01","kind":"payment","spec_version":"2.1","#,
            r#""type":"x-ringfence-fingerprint"}"#
        )
    );

    let ind = &objects[9];
    let id = indicator_id(PRODUCER_ID, "payment", &indicators()[0].hmac);
    assert_eq!(ind["id"], id.as_str());
    assert_eq!(ind["created_by_ref"], PRODUCER_ID);
    assert_eq!(ind["created"], "2025-03-01T12:00:00.000Z");
    assert_eq!(ind["modified"], "2025-03-01T12:00:00.000Z");
    assert_eq!(ind["name"], "ringfence: shared payment card");
    assert_eq!(
        ind["description"],
        "HMAC-SHA256 under consortium key fa8c762602411cb25a365640fe9a3c01 of a payment value shared by a distillation operation."
    );
    assert_eq!(
        ind["indicator_types"],
        serde_json::json!(["malicious-activity"])
    );
    assert_eq!(
        ind["pattern"],
        "[x-ringfence-fingerprint:kind = 'payment' AND x-ringfence-fingerprint:hmac = \
         '0e80f853a56caed202636eb7e5735eebe7162c535982c177668e13bb9df99312' AND \
         x-ringfence-fingerprint:key_id = 'fa8c762602411cb25a365640fe9a3c01']"
    );
    assert_eq!(ind["pattern_type"], "stix");
    assert_eq!(ind["pattern_version"], "2.1");
    assert_eq!(ind["valid_from"], "2025-03-01T00:00:00Z");
    assert_eq!(ind["valid_until"], "2025-03-31T00:00:00Z");
    assert_eq!(ind["confidence"], 85);
    assert_eq!(ind["object_marking_refs"], serde_json::json!([amber]));
    assert!(ind.get("revoked").is_none() && ind.get("labels").is_none());
    assert_eq!(objects[11]["name"], "ringfence: shared ja4+ip24 value");

    let rel = &objects[12];
    assert_eq!(rel["relationship_type"], "indicates");
    assert_eq!(rel["source_ref"], id.as_str());
    assert_eq!(rel["target_ref"], operation.as_str());
    assert_eq!(
        objects[14]["target_ref"],
        campaign_id(PRODUCER_ID, 99).as_str()
    );

    let grouping = &objects[15];
    assert_eq!(grouping["context"], "suspicious-activity");
    assert_eq!(
        grouping["name"],
        "ringfence export 2025-03-01T12:00:00.000Z: 3 indicators, 2 operations"
    );
    // Campaigns, indicators, SCOs.
    let refs: Vec<&Value> = [4, 5, 9, 10, 11, 6, 7, 8]
        .iter()
        .map(|&i| &objects[i]["id"])
        .collect();
    assert_eq!(
        grouping["object_refs"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        refs
    );

    for o in &objects {
        let id = o["id"].as_str().unwrap();
        match o["type"].as_str().unwrap() {
            "x-ringfence-fingerprint" => {
                assert!(
                    o.get("created").is_none()
                        && o.get("modified").is_none()
                        && o.get("confidence").is_none()
                );
            }
            t => assert_v4(id, t),
        }
        if ["campaign", "indicator", "relationship", "grouping"]
            .contains(&o["type"].as_str().unwrap())
        {
            assert_eq!(o["created_by_ref"], PRODUCER_ID, "{id}");
            assert_eq!(o["object_marking_refs"], serde_json::json!([amber]), "{id}");
        }
    }
    // The operation anchors (0x7f3a = 32570, 99) are not written.
    assert!(!text.contains("32570") && !text.contains("7f3a"));
}

#[test]
fn revocation_and_sighting_shapes() {
    let m = meta();
    let text = revocation_bundle(&m, &indicators()[1..2], T0 + 3.0 * DAY + 0.5).unwrap();
    let objects = objects(&text);
    let types: Vec<&str> = objects
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["identity", "marking-definition", "indicator"]);
    let export = common::objects(&export_bundle(&m, &indicators()).unwrap());
    assert_eq!(objects[0], export[0], "the identity as exported");
    let mut revoked = objects[2].clone();
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["modified"], "2025-03-04T12:00:00.500Z");
    let r = revoked.as_object_mut().unwrap();
    r.remove("revoked");
    r.insert("modified".into(), "2025-03-01T12:00:00.000Z".into());
    assert_eq!(
        revoked, export[10],
        "same object, but for modified and revoked"
    );

    let s = Sighting {
        indicator_id: indicator_id(PRODUCER_ID, "payment", &indicators()[0].hmac),
        count: 37,
        first_seen: T0 + 2.0 * DAY + 9.2 * 3600.0,
        last_seen: T0 + 2.0 * DAY + 17.0 * 3600.0,
    };
    let text = sighting_bundle(&sighter(), T0 + 3.0 * DAY, Tlp::Green, &[s.clone(), s]).unwrap();
    let objects = common::objects(&text);
    let types: Vec<&str> = objects
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["identity", "marking-definition", "sighting", "sighting"]
    );
    let sighting = &objects[2];
    assert_v4(sighting["id"].as_str().unwrap(), "sighting");
    assert_ne!(sighting["id"], objects[3]["id"]);
    assert_eq!(sighting["created_by_ref"], SIGHTER_ID);
    assert_eq!(sighting["created"], "2025-03-04T12:00:00.000Z");
    assert_eq!(sighting["count"], 37);
    assert_eq!(sighting["first_seen"], "2025-03-03T21:12:00Z");
    assert_eq!(sighting["last_seen"], "2025-03-04T05:00:00Z");
    assert_eq!(
        sighting["where_sighted_refs"],
        serde_json::json!([SIGHTER_ID])
    );
    assert_eq!(
        sighting["object_marking_refs"],
        serde_json::json!([Tlp::Green.marking_id()])
    );
    assert!(sighting.get("observed_data_refs").is_none() && sighting.get("summary").is_none());
}
