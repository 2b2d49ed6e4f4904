//! Traffic Light Protocol markings.
//!
//! Bundles are marked with the TLP 2.0 marking-definition objects published
//! by OASIS (`oasis-open/cti-stix-common-objects`, extension
//! `extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`), written
//! byte for byte as published. STIX 2.1 itself predefines only the TLP 1.0
//! objects (§7.2.1); they are accepted on import, white as clear.

use std::collections::BTreeMap;

use serde::Serialize;

/// The OASIS extension definition that carries the TLP 2.0 level.
pub const TLP_2_0_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// A Traffic Light Protocol level, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    /// TLP:CLEAR (TLP 1.0's white): no limit on disclosure.
    Clear,
    /// TLP:GREEN: the recipient's community.
    Green,
    /// TLP:AMBER: the recipient's organization and its clients, need to know.
    Amber,
    /// TLP:AMBER+STRICT: the recipient's organization only.
    AmberStrict,
    /// TLP:RED: the named recipients only.
    Red,
}

/// The TLP 1.0 marking-definition ids of STIX 2.1 §7.2.1.4, with their
/// `definition.tlp` values.
const TLP_1_0: [(&str, &str, Tlp); 4] = [
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "white",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "green",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "amber",
        Tlp::Amber,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        "red",
        Tlp::Red,
    ),
];

#[derive(Serialize)]
struct MarkingDefinition {
    #[serde(rename = "type")]
    object_type: &'static str,
    spec_version: &'static str,
    id: &'static str,
    created: &'static str,
    name: &'static str,
    extensions: BTreeMap<&'static str, TlpExtension>,
}

#[derive(Serialize)]
struct TlpExtension {
    extension_type: &'static str,
    tlp_2_0: &'static str,
}

impl Tlp {
    /// All five levels, least restrictive first.
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The id of the OASIS TLP 2.0 marking-definition object.
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The marking's `name`: `"TLP:CLEAR"`, `"TLP:AMBER+STRICT"`, ….
    pub fn name(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// The `tlp_2_0` property of the marking's extension: `"clear"`,
    /// `"amber+strict"`, ….
    pub fn tlp_2_0(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The OASIS TLP 2.0 marking-definition object as compact JSON, byte for
    /// byte as every bundle carries it.
    pub fn marking_definition(self) -> String {
        serde_json::to_string(&self.marking_object()).expect("a fixed object serializes")
    }

    /// The level of a TLP 2.0 or TLP 1.0 marking-definition id (TLP 1.0
    /// white is [`Tlp::Clear`]); `None` for any other id.
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        Tlp::ALL
            .into_iter()
            .find(|t| t.marking_id() == id)
            .or_else(|| {
                TLP_1_0
                    .iter()
                    .find(|(i, _, _)| *i == id)
                    .map(|(_, _, t)| *t)
            })
    }

    pub(crate) fn marking_object(self) -> impl Serialize {
        let extension = TlpExtension {
            extension_type: "property-extension",
            tlp_2_0: self.tlp_2_0(),
        };
        MarkingDefinition {
            object_type: "marking-definition",
            spec_version: "2.1",
            id: self.marking_id(),
            created: "2022-10-01T00:00:00.000Z",
            name: self.name(),
            extensions: [(TLP_2_0_EXTENSION_ID, extension)].into_iter().collect(),
        }
    }
}

/// What a marking-definition object with a TLP id must say, for the import
/// check: for TLP 2.0 ids the `tlp_2_0` value of the OASIS extension, for
/// TLP 1.0 ids the `definition.tlp` value. `None` for other ids.
pub(crate) enum Expected {
    V2(&'static str),
    V1(&'static str),
}

pub(crate) fn expected_content(id: &str) -> Option<Expected> {
    if let Some(t) = Tlp::ALL.into_iter().find(|t| t.marking_id() == id) {
        return Some(Expected::V2(t.tlp_2_0()));
    }
    TLP_1_0
        .iter()
        .find(|(i, _, _)| *i == id)
        .map(|(_, v, _)| Expected::V1(v))
}
