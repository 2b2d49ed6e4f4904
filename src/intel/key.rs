//! The consortium key: what providers sharing intelligence hash under.

use super::IntelError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// A value given in pieces: called with a function that takes each piece
/// in turn (so that values made of several parts hash without being copied
/// into one buffer).
pub type Pieces<'a> = dyn Fn(&mut dyn FnMut(&[u8])) + 'a;

/// The fewest bytes a consortium key may have.
pub const MIN_KEY_BYTES: usize = 16;

/// Domain separation of everything hashed under the key.
const DOMAIN: &[u8] = b"ringfence/v1/";

/// A key shared by the providers of one consortium (never by anyone else).
///
/// Every value a guard shares is `HMAC-SHA256(K, "ringfence/v1/" ‖ kind ‖
/// 0x00 ‖ value)`: providers holding the same key compute the same token for
/// the same card, device or address, and nobody without the key can tell
/// which value a token stands for, or test a guess. The key's fingerprint
/// ([`ConsortiumKey::key_id`], itself an HMAC, so a weak key cannot be
/// recovered from it) travels with every token, so that tokens hashed under
/// another key are refused rather than silently never matching.
#[derive(Clone)]
pub struct ConsortiumKey {
    mac: HmacSha256,
    key_id: [u8; 16],
    minhash_seed: u64,
}

impl ConsortiumKey {
    /// A key from its bytes (at least [`MIN_KEY_BYTES`]).
    ///
    /// ```
    /// use ringfence::intel::ConsortiumKey;
    /// let a = ConsortiumKey::new(b"example consortium key: 32 bytes").unwrap();
    /// let b = ConsortiumKey::new(b"another consortium key, 32 bytes").unwrap();
    /// assert_eq!(a.key_id_hex(), "fa8c762602411cb25a365640fe9a3c01");
    /// assert_ne!(a.value_token("payment", b"4111"), b.value_token("payment", b"4111"));
    /// assert!(ConsortiumKey::new(b"short").is_err());
    /// ```
    pub fn new(bytes: &[u8]) -> Result<ConsortiumKey, IntelError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(IntelError::new(format!(
                "the consortium key has {} bytes; it needs at least {MIN_KEY_BYTES} (use 32 random bytes)",
                bytes.len()
            )));
        }
        let mac = HmacSha256::new_from_slice(bytes)
            .map_err(|e| IntelError::new(format!("the consortium key is unusable: {e}")))?;
        let mut key = ConsortiumKey {
            mac,
            key_id: [0; 16],
            minhash_seed: 0,
        };
        let fp = key.hash(b"key-fingerprint", |_| {});
        key.key_id.copy_from_slice(&fp[..16]);
        let seed = key.hash(b"minhash-seed", |_| {});
        key.minhash_seed = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default());
        Ok(key)
    }

    /// The key in a file: its bytes, less trailing whitespace (so that a
    /// key written by `head -c 32 /dev/urandom | base64 > KEY` works as it is).
    pub fn from_file(path: impl AsRef<Path>) -> Result<ConsortiumKey, IntelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            IntelError::new(format!(
                "cannot read the consortium key file {}: {e}",
                path.display()
            ))
        })?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        ConsortiumKey::new(&bytes[..end])
            .map_err(|e| IntelError::new(format!("{}: {}", path.display(), e.message)))
    }

    /// The key's fingerprint: the first 16 bytes of
    /// `HMAC(K, "ringfence/v1/key-fingerprint" ‖ 0x00)`.
    pub fn key_id(&self) -> [u8; 16] {
        self.key_id
    }

    /// [`ConsortiumKey::key_id`] in lower-case hex (32 digits).
    pub fn key_id_hex(&self) -> String {
        hex(&self.key_id)
    }

    /// The token of one value of `kind`.
    pub fn value_token(&self, kind: &str, value: &[u8]) -> [u8; 32] {
        self.token(kind, &|feed: &mut dyn FnMut(&[u8])| feed(value))
    }

    /// The token of a value given in pieces (`feed` is handed each piece in
    /// turn): `HMAC(K, "ringfence/v1/" ‖ kind ‖ 0x00 ‖ pieces…)`.
    pub fn token(&self, kind: &str, pieces: &Pieces<'_>) -> [u8; 32] {
        self.hash(kind.as_bytes(), |mac| pieces(&mut |p: &[u8]| mac.update(p)))
    }

    /// The seed of prompt-template signatures shared by the consortium.
    pub(crate) fn minhash_seed(&self) -> u64 {
        self.minhash_seed
    }

    fn hash(&self, label: &[u8], body: impl FnOnce(&mut HmacSha256)) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(label);
        mac.update(&[0]);
        body(&mut mac);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for ConsortiumKey {
    /// The fingerprint only: the key itself is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsortiumKey({})", self.key_id_hex())
    }
}

impl PartialEq for ConsortiumKey {
    fn eq(&self, other: &ConsortiumKey) -> bool {
        self.key_id == other.key_id
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Bytes from hex (either case), or what is wrong and where.
pub fn unhex<const N: usize>(text: &str) -> Result<[u8; N], IntelError> {
    let t = text.as_bytes();
    if t.len() != 2 * N {
        return Err(IntelError::new(format!(
            "expected {} hex digits, found {} characters",
            2 * N,
            t.len()
        )));
    }
    let digit = |i: usize| -> Result<u8, IntelError> {
        let c = t[i];
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(IntelError::new(format!(
                "character {} ({:?}) is not a hex digit",
                i + 1,
                char::from(c)
            ))),
        }
    };
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (digit(2 * i)? << 4) | digit(2 * i + 1)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The design note's example key and its fingerprint
    /// (`docs/design/intel-stix.md`), and RFC 4231's HMAC-SHA256 test case 2
    /// through the same code path.
    #[test]
    fn fingerprint_and_tokens_are_hmac_sha256() {
        let k = ConsortiumKey::new(b"example consortium key: 32 bytes").unwrap();
        assert_eq!(k.key_id_hex(), "fa8c762602411cb25a365640fe9a3c01");
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Pieces hash like their concatenation; the kind separates.
        let whole = k.value_token("device", b"abcdef");
        let pieces = k.token("device", &|f: &mut dyn FnMut(&[u8])| {
            f(b"abc");
            f(b"def")
        });
        assert_eq!(whole, pieces);
        assert_ne!(whole, k.value_token("payment", b"abcdef"));
        assert_eq!(unhex::<16>(&k.key_id_hex()).unwrap(), k.key_id());
        assert!(unhex::<2>("zz00")
            .unwrap_err()
            .message
            .contains("character 1"));
    }
}
