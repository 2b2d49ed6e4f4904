//! The objects of the bundles as written: one struct per STIX object type,
//! whose field order is the key order of its JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ids::digest_id;

#[derive(Serialize)]
pub(crate) struct Identity<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    pub(crate) name: &'a str,
    pub(crate) identity_class: &'static str,
}

#[derive(Serialize)]
pub(crate) struct ExtensionDefinition {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'static str,
    pub(crate) created_by_ref: &'static str,
    pub(crate) created: &'static str,
    pub(crate) modified: &'static str,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) schema: &'static str,
    pub(crate) version: &'static str,
    pub(crate) extension_types: [&'static str; 1],
}

#[derive(Serialize)]
pub(crate) struct Campaign<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) created_by_ref: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    pub(crate) name: String,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
    pub(crate) confidence: u8,
    pub(crate) object_marking_refs: [&'static str; 1],
}

#[derive(Serialize)]
pub(crate) struct NewSco {
    pub(crate) extension_type: &'static str,
}

#[derive(Serialize)]
pub(crate) struct Fingerprint<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) hmac: &'a str,
    pub(crate) key_id: &'a str,
    pub(crate) extensions: BTreeMap<&'static str, NewSco>,
}

#[derive(Serialize)]
pub(crate) struct Indicator<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) created_by_ref: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) revoked: bool,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) indicator_types: [&'static str; 1],
    pub(crate) pattern: String,
    pub(crate) pattern_type: &'static str,
    pub(crate) pattern_version: &'static str,
    pub(crate) valid_from: &'a str,
    pub(crate) valid_until: &'a str,
    pub(crate) confidence: u8,
    pub(crate) object_marking_refs: [&'static str; 1],
}

#[derive(Serialize)]
pub(crate) struct Relationship<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) created_by_ref: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    pub(crate) relationship_type: &'static str,
    pub(crate) source_ref: &'a str,
    pub(crate) target_ref: &'a str,
    pub(crate) object_marking_refs: [&'static str; 1],
}

#[derive(Serialize)]
pub(crate) struct Grouping<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) created_by_ref: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    pub(crate) name: String,
    pub(crate) context: &'static str,
    pub(crate) object_refs: Vec<&'a str>,
    pub(crate) object_marking_refs: [&'static str; 1],
}

#[derive(Serialize)]
pub(crate) struct SightingObject<'a> {
    #[serde(rename = "type")]
    pub(crate) object_type: &'static str,
    pub(crate) spec_version: &'static str,
    pub(crate) id: &'a str,
    pub(crate) created_by_ref: &'a str,
    pub(crate) created: &'a str,
    pub(crate) modified: &'a str,
    pub(crate) sighting_of_ref: &'a str,
    pub(crate) count: u64,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
    pub(crate) where_sighted_refs: [&'a str; 1],
    pub(crate) object_marking_refs: [&'static str; 1],
}

/// The objects of a bundle being written, as compact JSON texts.
#[derive(Default)]
pub(crate) struct Objects(pub(crate) Vec<String>);

impl Objects {
    pub(crate) fn push(&mut self, object: &impl Serialize) {
        self.0
            .push(serde_json::to_string(object).expect("bundle objects serialize"));
    }

    /// `{"type":"bundle","id":…,"objects":[…]}`, with an id digested from
    /// the objects.
    pub(crate) fn into_bundle(self) -> String {
        let objects = self.0.join(",");
        let id = digest_id("bundle", "bundle", &[objects.as_bytes()]);
        format!("{{\"type\":\"bundle\",\"id\":\"{id}\",\"objects\":[{objects}]}}")
    }
}
