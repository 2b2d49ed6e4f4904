//! Writes three STIX 2.1 bundles built from synthetic indicators, for the
//! OASIS validator and `stix2` round trips of `python/tests/test_stix.py`:
//!
//! ```text
//! cargo run -q -p ringfence-intel --example stix_fixtures -- DIR
//! ```
//!
//! `DIR/export.json` (two operations, four indicators), `DIR/revocation.json`
//! (two of them revoked) and `DIR/sighting.json` (another provider's
//! sightings of two of them). The hmacs are SHA-256 of fixed strings and the
//! key fingerprint is fixed: nothing here is a real value.

use std::path::PathBuf;

use ringfence_intel::{
    export_bundle, indicator_id, revocation_bundle, sighting_bundle, ExportIndicator, ExportMeta,
    Producer, Sighting, Tlp,
};
use sha2::{Digest, Sha256};

/// 2025-03-01T12:00:00Z.
const T0: f64 = 1_740_830_400.0;
const DAY: f64 = 86_400.0;

fn hmac(text: &str) -> [u8; 32] {
    Sha256::digest(format!("ringfence fixture: {text}").as_bytes()).into()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: stix_fixtures DIR")?
        .into();
    std::fs::create_dir_all(&dir)?;

    let meta = ExportMeta {
        producer: Producer {
            identity_id: "identity--3dff565e-7265-4139-9cb0-eceed191fca9".into(),
            name: "Provider A trust & safety".into(),
        },
        key_id: *b"fixture-key-id16",
        created: T0,
        valid_from: T0 - 12.0 * 3600.0,
        valid_until: T0 + 30.0 * DAY,
        tlp: Tlp::Amber,
    };
    let indicator =
        |kind: &str, value: &str, confidence, campaign, age_days: f64| ExportIndicator {
            kind: kind.into(),
            hmac: hmac(value),
            confidence,
            campaign,
            first_seen: T0 - age_days * DAY,
            last_seen: T0 - 3600.0,
        };
    let indicators = [
        indicator("payment", "card 1", 85, 7, 9.0),
        indicator("template", "band 3", 50, 7, 4.5),
        indicator("ja4+ip24", "client 2", 70, 7, 2.0),
        indicator("device", "device 5", 15, 11, 1.0),
    ];
    let export = export_bundle(&meta, &indicators)?;
    let revocation = revocation_bundle(&meta, &indicators[1..3], T0 + 4.0 * DAY)?;

    let sighter = Producer {
        identity_id: "identity--9a7c0e52-1d3b-4f6a-8e2d-5c4b3a291807".into(),
        name: "Provider B abuse team".into(),
    };
    let id = |i: usize| {
        indicator_id(
            &meta.producer.identity_id,
            &indicators[i].kind,
            &indicators[i].hmac,
        )
    };
    let sightings = [
        Sighting {
            indicator_id: id(0),
            count: 37,
            first_seen: T0 + 2.0 * DAY,
            last_seen: T0 + 2.4 * DAY,
        },
        Sighting {
            indicator_id: id(3),
            count: 2_000_000_000,
            first_seen: T0 + DAY,
            last_seen: T0 + DAY,
        },
    ];
    let sighting = sighting_bundle(&sighter, T0 + 3.0 * DAY, Tlp::Green, &sightings)?;

    for (name, text) in [
        ("export.json", export),
        ("revocation.json", revocation),
        ("sighting.json", sighting),
    ] {
        std::fs::write(dir.join(name), text + "\n")?;
    }
    Ok(())
}
