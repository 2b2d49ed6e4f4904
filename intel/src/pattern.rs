//! The one STIX pattern shape ringfence reads and writes:
//!
//! `[x-ringfence-fingerprint:kind = 'K' AND x-ringfence-fingerprint:hmac = 'H' AND x-ringfence-fingerprint:key_id = 'F']`
//!
//! One observation of three equality comparisons joined by `AND`, in any
//! order, with any whitespace between tokens. This is not general STIX
//! patterning: a pattern that names no `x-ringfence-fingerprint` property is
//! "other" (skipped by the importer), and one that names it in any other
//! shape is an error.

use crate::SCO_TYPE;

/// A token of a STIX pattern, as far as this module needs to tell them apart.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Open,
    Close,
    /// `(` or `)`.
    Paren,
    /// A run of `=`, `!`, `<`, `>`.
    Operator(&'a str),
    /// A quoted string, unescaped.
    Str(String),
    /// Anything else: an object path, a keyword, a number.
    Word(&'a str),
}

/// Splits a pattern into tokens; `None` for an unterminated string or an
/// invalid escape.
fn tokenize(pattern: &str) -> Option<Vec<Token<'_>>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.char_indices().peekable();
    let special = |c: char| c.is_whitespace() || "[]()'=!<>".contains(c);
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' | ']' | '(' | ')' => {
                chars.next();
                tokens.push(match c {
                    '[' => Token::Open,
                    ']' => Token::Close,
                    _ => Token::Paren,
                });
            }
            '=' | '!' | '<' | '>' => {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if !"=!<>".contains(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Operator(&pattern[start..end]));
            }
            '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next()?.1 {
                        '\'' => break,
                        // STIX escapes exactly two characters: \' and \\.
                        '\\' => match chars.next()?.1 {
                            c @ ('\'' | '\\') => value.push(c),
                            _ => return None,
                        },
                        c => value.push(c),
                    }
                }
                tokens.push(Token::Str(value));
            }
            _ => {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if special(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Word(&pattern[start..end]));
            }
        }
    }
    Some(tokens)
}

/// The values of a ringfence pattern's three comparisons, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub kind: String,
    pub hmac: String,
    pub key_id: String,
}

/// What a pattern is to the importer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The three-comparison ringfence form.
    Ringfence(Fingerprint),
    /// A pattern that names no `x-ringfence-fingerprint` property.
    Other,
    /// A pattern that names the ringfence type in some other shape; the
    /// text says what is wrong.
    Malformed(String),
}

/// Writes the pattern of a fingerprint.
pub(crate) fn write(kind: &str, hmac_hex: &str, key_id_hex: &str) -> String {
    format!(
        "[{SCO_TYPE}:kind = '{kind}' AND {SCO_TYPE}:hmac = '{hmac_hex}' AND {SCO_TYPE}:key_id = '{key_id_hex}']"
    )
}

/// Classifies and reads a STIX pattern.
pub(crate) fn read(pattern: &str) -> Shape {
    let prefix = format!("{SCO_TYPE}:");
    let expected = "is not the ringfence form [x-ringfence-fingerprint:kind = '…' AND \
                    x-ringfence-fingerprint:hmac = '…' AND x-ringfence-fingerprint:key_id = '…']";
    let Some(tokens) = tokenize(pattern) else {
        return if pattern.contains(SCO_TYPE) {
            Shape::Malformed(format!(
                "{expected}: it has an unterminated string or an invalid escape"
            ))
        } else {
            Shape::Other
        };
    };
    let names_ours = tokens
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.starts_with(&prefix)));
    if !names_ours {
        return Shape::Other;
    }
    let (Some(Token::Open), Some(Token::Close)) = (tokens.first(), tokens.last()) else {
        return Shape::Malformed(format!("{expected}: it must be one observation in [ ]"));
    };
    let inner = &tokens[1..tokens.len() - 1];
    // comparison (AND comparison){2}: 3 + 1 + 3 + 1 + 3 tokens.
    if inner.len() != 11 {
        return Shape::Malformed(format!(
            "{expected}: it must be exactly three equality comparisons joined by AND"
        ));
    }
    let (mut kind, mut hmac, mut key_id) = (None, None, None);
    for (i, comparison) in inner.chunks(4).enumerate() {
        if i < 2 && comparison[3] != Token::Word("AND") {
            return Shape::Malformed(format!("{expected}: comparisons must be joined by AND"));
        }
        let (Token::Word(path), Token::Operator("="), Token::Str(value)) =
            (&comparison[0], &comparison[1], &comparison[2])
        else {
            return Shape::Malformed(format!(
                "{expected}: comparison {} is not <x-ringfence-fingerprint:property> = '<string>'",
                i + 1
            ));
        };
        let slot = match path.strip_prefix(&prefix) {
            Some("kind") => &mut kind,
            Some("hmac") => &mut hmac,
            Some("key_id") => &mut key_id,
            _ => {
                return Shape::Malformed(format!(
                    "{expected}: comparison {} is on {path}, not on kind, hmac or key_id",
                    i + 1
                ))
            }
        };
        if slot.replace(value.clone()).is_some() {
            return Shape::Malformed(format!("{expected}: {path} is compared twice"));
        }
    }
    match (kind, hmac, key_id) {
        (Some(kind), Some(hmac), Some(key_id)) => {
            Shape::Ringfence(Fingerprint { kind, hmac, key_id })
        }
        _ => Shape::Malformed(format!("{expected}: a comparison is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(kind: &str, hmac: &str, key_id: &str) -> Shape {
        Shape::Ringfence(Fingerprint {
            kind: kind.into(),
            hmac: hmac.into(),
            key_id: key_id.into(),
        })
    }

    #[test]
    fn written_form_reads_back() {
        assert_eq!(
            read(&write("ja4+ip24", "ab", "cd")),
            fp("ja4+ip24", "ab", "cd")
        );
    }

    #[test]
    fn any_order_and_whitespace() {
        let p = "  [ x-ringfence-fingerprint:key_id='cd'AND\n\tx-ringfence-fingerprint:kind  =  'k\\'1'   \
                 AND x-ringfence-fingerprint:hmac = 'ab' ]  ";
        assert_eq!(read(p), fp("k'1", "ab", "cd"));
    }

    #[test]
    fn other_patterns_are_other() {
        for p in [
            "[ipv4-addr:value = '1.2.3.4']",
            "[file:hashes.'SHA-256' = 'aa'] OR [ipv4-addr:value = '10.0.0.0/8']",
            "[ipv4-addr:value = 'x-ringfence-fingerprint:kind']",
            "",
            "[domain-name:value = 'unterminated",
        ] {
            assert_eq!(read(p), Shape::Other, "{p}");
        }
    }

    #[test]
    fn ringfence_patterns_of_other_shapes_are_malformed() {
        for (p, why) in [
            ("[x-ringfence-fingerprint:kind = 'a' AND x-ringfence-fingerprint:hmac = 'b']", "exactly three"),
            ("[x-ringfence-fingerprint:kind = 'a' OR x-ringfence-fingerprint:hmac = 'b' AND x-ringfence-fingerprint:key_id = 'c']", "joined by AND"),
            ("[x-ringfence-fingerprint:kind = 'a' AND x-ringfence-fingerprint:kind = 'b' AND x-ringfence-fingerprint:key_id = 'c']", "compared twice"),
            ("[x-ringfence-fingerprint:kind != 'a' AND x-ringfence-fingerprint:hmac = 'b' AND x-ringfence-fingerprint:key_id = 'c']", "comparison 1"),
            ("[x-ringfence-fingerprint:kind = 'a' AND x-ringfence-fingerprint:raw = 'b' AND x-ringfence-fingerprint:key_id = 'c']", "not on kind"),
            ("[x-ringfence-fingerprint:kind = 'a' AND x-ringfence-fingerprint:hmac = 'b' AND x-ringfence-fingerprint:key_id = 'c'] WITHIN 5 SECONDS", "one observation"),
            ("[x-ringfence-fingerprint:kind = 'a\\x']", "invalid escape"),
        ] {
            match read(p) {
                Shape::Malformed(m) => assert!(m.contains(why), "{p}: {m}"),
                other => panic!("{p}: {other:?}"),
            }
        }
    }
}
