//! Every refused export, revocation and sighting report, with a message
//! that says what is wrong and where (the argument, the input item).

mod common;

use common::*;
use ringfence_intel::*;

fn export_rejected(result: Result<String, ExportError>, kind: ExportErrorKind, parts: &[&str]) {
    let err = result.expect_err("exported");
    let message = err.to_string();
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
    assert_eq!(err.kind(), kind, "{message}");
}

#[test]
fn export_refuses_bad_validity() {
    let inputs = indicators();
    for (from, until) in [(T0, T0), (T0, T0 - 1.0), (T0, T0 + 0.0004)] {
        let m = ExportMeta {
            valid_from: from,
            valid_until: until,
            ..meta()
        };
        export_rejected(
            export_bundle(&m, &inputs),
            ExportErrorKind::Interval,
            &["valid_until", "is not later than valid_from"],
        );
        export_rejected(
            revocation_bundle(&m, &inputs, T0 + 1.0),
            ExportErrorKind::Interval,
            &["valid_until"],
        );
    }
    let m = ExportMeta {
        valid_until: f64::NAN,
        ..meta()
    };
    export_rejected(
        export_bundle(&m, &inputs),
        ExportErrorKind::Time,
        &["valid_until NaN is not a time"],
    );
    let m = ExportMeta {
        created: 1e15,
        ..meta()
    };
    export_rejected(
        export_bundle(&m, &inputs),
        ExportErrorKind::Time,
        &["created 1000000000000000 is not a time"],
    );
}

#[test]
fn export_refuses_bad_indicators() {
    let m = meta();
    let with = |i: usize, change: &dyn Fn(&mut ExportIndicator)| {
        let mut v = indicators();
        change(&mut v[i]);
        export_bundle(&m, &v)
    };
    export_rejected(
        with(1, &|x| x.confidence = 101),
        ExportErrorKind::Confidence,
        &["indicator 1 (template): confidence 101 is outside 0..=100"],
    );
    for kind in ["", "Payment", "pay ment", "card'", &"k".repeat(65)] {
        export_rejected(
            with(0, &|x| x.kind = kind.into()),
            ExportErrorKind::Kind,
            &["indicator 0 (?): kind", "is not a kind name"],
        );
    }
    assert!(with(0, &|x| x.kind = "k".repeat(64)).is_ok());
    export_rejected(
        with(2, &|x| x.last_seen = x.first_seen - 1.0),
        ExportErrorKind::Interval,
        &["indicator 2 (ja4+ip24): last_seen 2025-02-27T11:59:59.125Z is before first_seen"],
    );
    export_rejected(
        with(2, &|x| x.first_seen = f64::INFINITY),
        ExportErrorKind::Time,
        &["indicator 2 (ja4+ip24): first_seen inf"],
    );
    export_rejected(
        with(2, &|x| {
            x.kind = "payment".into();
            x.hmac = indicators()[0].hmac;
        }),
        ExportErrorKind::Duplicate,
        &["indicator 2 (payment): same kind and hmac as indicator 0"],
    );
    export_rejected(
        export_bundle(&m, &[]),
        ExportErrorKind::Empty,
        &["no indicators to export"],
    );
    export_rejected(
        revocation_bundle(&m, &[], T0 + 1.0),
        ExportErrorKind::Empty,
        &["no indicators to revoke"],
    );
    export_rejected(
        revocation_bundle(&m, &indicators(), T0 + 0.0004),
        ExportErrorKind::Interval,
        &["revoked_at 2025-03-01T12:00:00.000Z is not later than the indicators' created"],
    );
}

#[test]
fn export_refuses_bad_producers() {
    let inputs = indicators();
    for id in [
        "identity--3DFF565E-7265-4139-9CB0-ECEED191FCA9",
        "identity--3dff565e-7265-1139-9cb0-eceed191fca9",
        "identity--3dff565e-7265-4139-7cb0-eceed191fca9",
        "organization--3dff565e-7265-4139-9cb0-eceed191fca9",
        "identity--3dff565e",
    ] {
        let m = ExportMeta {
            producer: Producer {
                identity_id: id.into(),
                ..producer()
            },
            ..meta()
        };
        export_rejected(
            export_bundle(&m, &inputs),
            ExportErrorKind::Producer,
            &["producer.identity_id", id, "version 4"],
        );
    }
    let m = ExportMeta {
        producer: Producer {
            name: " ".into(),
            ..producer()
        },
        ..meta()
    };
    export_rejected(
        export_bundle(&m, &inputs),
        ExportErrorKind::Producer,
        &["producer.name is empty"],
    );
    let s = Sighting {
        indicator_id: "indicator--40611c23".into(),
        count: 1,
        first_seen: T0,
        last_seen: T0,
    };
    export_rejected(
        sighting_bundle(&sighter(), T0, Tlp::Red, &[s]),
        ExportErrorKind::Reference,
        &["sighting 0: indicator_id \"indicator--40611c23\""],
    );
    let s = Sighting {
        indicator_id: indicator_id(PRODUCER_ID, "x", &[0; 32]),
        count: 1,
        first_seen: T0,
        last_seen: T0 - 1.0,
    };
    export_rejected(
        sighting_bundle(&sighter(), T0, Tlp::Red, &[s]),
        ExportErrorKind::Interval,
        &["sighting 0 (indicator--", "last_seen"],
    );
    export_rejected(
        sighting_bundle(&producer(), T0, Tlp::Red, &[]),
        ExportErrorKind::Empty,
        &["no sightings"],
    );
    let bad = Producer {
        identity_id: "identity--x".into(),
        ..sighter()
    };
    export_rejected(
        sighting_bundle(&bad, T0, Tlp::Red, &[]),
        ExportErrorKind::Producer,
        &["sighter.identity_id"],
    );
}
