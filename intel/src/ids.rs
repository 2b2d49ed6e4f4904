//! Deterministic STIX identifiers.
//!
//! * The custom SCO's id is the UUIDv5 of its id contributing properties
//!   (STIX 2.1 §2.9): `uuid5(SCO namespace, JCS({hmac, key_id, kind}))`,
//!   equal to what `stix2` computes.
//! * Every other object gets a UUIDv4-*shaped* id: 16 bytes of a SHA-256
//!   digest of a domain string and what identifies the object, with the
//!   version nibble set to 4 and the variant bits to 10. So an indicator, a
//!   campaign or a relationship keeps its id across exports (a revocation has
//!   something to point at), and producers never share one (only the creator
//!   may version an object, §3.6).

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::SCO_TYPE;

/// The namespace of deterministic SCO ids (STIX 2.1 §2.9).
const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Bytes from exactly `N * 2` lower-case hex digits, else `None`.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let b = text.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// A UUIDv4-shaped id from the SHA-256 of `domain` and `parts`, each part
/// prefixed by its length so that no two part lists hash alike.
pub(crate) fn digest_id(object_type: &str, domain: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(b"ringfence/v1/stix-id/");
    h.update(domain.as_bytes());
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    format!("{object_type}--{}", id.hyphenated())
}

/// The id of the `x-ringfence-fingerprint` SCO with these properties:
/// `"x-ringfence-fingerprint--<UUIDv5>"` over the JCS (RFC 8785) text of
/// `{"hmac": …, "key_id": …, "kind": …}`, as `stix2` computes it.
///
/// ```
/// let id = ringfence_intel::sco_id(
///     "payment",
///     "0e80f853a56caed202636eb7e5735eebe7162c535982c177668e13bb9df99312",
///     "fa8c762602411cb25a365640fe9a3c01",
/// );
/// assert_eq!(id, "x-ringfence-fingerprint--dd595864-b97e-5fec-b94a-477123f0eb2d");
/// ```
pub fn sco_id(kind: &str, hmac_hex: &str, key_id_hex: &str) -> String {
    // JCS: keys sorted, no whitespace, strings escaped as JSON.stringify
    // does; serde_json's compact output of a sorted map is exactly that for
    // these string values.
    let contributing: std::collections::BTreeMap<&str, &str> =
        [("hmac", hmac_hex), ("key_id", key_id_hex), ("kind", kind)]
            .into_iter()
            .collect();
    let jcs = serde_json::to_string(&contributing).expect("a map of strings serializes");
    let id = Uuid::new_v5(&SCO_NAMESPACE, jcs.as_bytes());
    format!("{SCO_TYPE}--{}", id.hyphenated())
}

/// The deterministic STIX id of the indicator a producer exports for
/// (`kind`, `hmac`): `"indicator--<uuid>"`, with version nibble 4 and
/// variant bits 10, from the SHA-256 of a fixed domain string, the
/// producer's identity id, the kind and the hmac. Stable across exports (a
/// revocation names the same object), distinct between producers.
pub fn indicator_id(producer_identity: &str, kind: &str, hmac: &[u8; 32]) -> String {
    digest_id(
        "indicator",
        "indicator",
        &[producer_identity.as_bytes(), kind.as_bytes(), hmac],
    )
}

/// The deterministic id of the `campaign` a producer exports for its local
/// operation anchor `campaign`: `"campaign--<uuid>"`, UUIDv4-shaped, stable
/// across exports and distinct between producers. The anchor itself does not
/// appear in the bundle.
pub fn campaign_id(producer_identity: &str, campaign: u64) -> String {
    digest_id(
        "campaign",
        "campaign",
        &[producer_identity.as_bytes(), &campaign.to_le_bytes()],
    )
}

/// Whether `text` is a UUID in the 8-4-4-4-12 hex form (either case).
pub(crate) fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether `id` is `"<object_type>--<uuid>"`.
pub(crate) fn is_id_of(id: &str, object_type: &str) -> bool {
    id.strip_prefix(object_type)
        .and_then(|rest| rest.strip_prefix("--"))
        .is_some_and(is_uuid)
}

/// The type part of a STIX id (`"indicator"` of `"indicator--…"`), if the id
/// is `<type>--<uuid>` with a type of lower-case letters, digits and hyphens.
pub(crate) fn id_type(id: &str) -> Option<&str> {
    let (object_type, uuid) = id.split_once("--")?;
    let type_ok = !object_type.is_empty()
        && object_type
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    (type_ok && is_uuid(uuid)).then_some(object_type)
}

/// Whether `id` is `"<object_type>--<uuid>"` with a lower-case UUID of version
/// 4 and variant 10, the form check 103 of the STIX validator wants.
pub(crate) fn is_v4_id_of(id: &str, object_type: &str) -> bool {
    let Some(uuid) = id
        .strip_prefix(object_type)
        .and_then(|rest| rest.strip_prefix("--"))
    else {
        return false;
    };
    let b = uuid.as_bytes();
    is_uuid(uuid)
        && !uuid.bytes().any(|c| c.is_ascii_uppercase())
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: [u8; 4] = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(hex(&bytes), "000fa5ff");
        assert_eq!(unhex::<4>("000fa5ff"), Some(bytes));
        assert_eq!(unhex::<4>("000FA5FF"), None);
        assert_eq!(unhex::<4>("000fa5f"), None);
        assert_eq!(unhex::<4>("000fa5fg"), None);
    }

    #[test]
    fn digest_ids_are_v4_shaped_and_separated() {
        let a = digest_id("campaign", "campaign", &[b"ab", b"c"]);
        let b = digest_id("campaign", "campaign", &[b"a", b"bc"]);
        assert_ne!(a, b);
        assert!(is_v4_id_of(&a, "campaign"), "{a}");
        assert!(is_v4_id_of(&b, "campaign"), "{b}");
        assert_eq!(id_type(&a), Some("campaign"));
        assert!(is_id_of(&a, "campaign"));
        assert!(!is_id_of(&a, "campaig"));
        assert_eq!(id_type("campaign--1234"), None);
        assert_eq!(
            id_type("Campaign--00000000-0000-4000-8000-000000000000"),
            None
        );
    }
}
