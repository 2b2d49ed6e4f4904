//! Text to a set of word n-gram hashes, for MinHash.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Longest n-gram accepted; longer `n` are clamped to it.
pub const MAX_SHINGLE_WORDS: usize = 16;

/// The hashes of the word `n`-grams of `text` after normalisation: lower-case,
/// runs of Unicode white space folded into one separator.
///
/// A text of fewer than `n` words (but at least one) gives one shingle of all
/// its words, so short prompts still have a signature; an empty or all-blank
/// text gives none. `n` is clamped to `1..=16`. Hashes are xxh3 with `seed`,
/// stable across processes and platforms.
///
/// ```
/// use ringfence::sketch::shingle;
///
/// assert_eq!(shingle("The  quick\tbrown FOX", 2, 0), shingle("the quick brown fox", 2, 0));
/// assert_eq!(shingle("one two three", 2, 0).len(), 2);
/// assert_eq!(shingle("alone", 3, 0).len(), 1);
/// assert!(shingle(" \n ", 3, 0).is_empty());
/// ```
pub fn shingle(text: &str, n: usize, seed: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    for_each_shingle(text, n, seed, |h| out.push(h));
    out
}

/// [`shingle`] without collecting: calls `f` with each n-gram hash, in order.
/// Allocates nothing for ASCII text of up to 2 KiB (or any length without
/// capital letters); other text needs one buffer.
pub fn for_each_shingle(text: &str, n: usize, seed: u64, f: impl FnMut(u64)) {
    let mut grams = Grams::new(n, seed, f);
    if text.is_ascii() {
        ascii_words(text.as_bytes(), |word| {
            grams.push(xxh3_64_with_seed(word, seed))
        });
    } else {
        let mut scratch = String::new();
        for word in text.split_whitespace() {
            scratch.clear();
            scratch.extend(word.chars().flat_map(char::to_lowercase));
            grams.push(xxh3_64_with_seed(scratch.as_bytes(), seed));
        }
    }
    grams.finish();
}

/// ASCII texts up to this many bytes are lower-cased in a stack buffer.
const STACK_TEXT: usize = 2048;

/// Calls `f` with each lower-cased, white-space-separated word of an ASCII
/// text. Branch-light: the text is lower-cased in one pass if it has capitals,
/// then word boundaries are found 64 bytes at a time as bit masks, so the
/// cost does not hinge on predicting where each word ends.
fn ascii_words(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut stack = [0u8; STACK_TEXT];
    let mut heap = Vec::new();
    let lower: &[u8] = if text.iter().any(u8::is_ascii_uppercase) {
        let buf = if text.len() <= STACK_TEXT {
            &mut stack[..text.len()]
        } else {
            heap.resize(text.len(), 0);
            &mut heap[..]
        };
        for (o, &b) in buf.iter_mut().zip(text) {
            *o = b.to_ascii_lowercase();
        }
        buf
    } else {
        text
    };
    // Bit j of `space` is set when byte `base + j` is white space (bytes
    // past the end count as space); `prev` is the space bit of the byte
    // before the block (the start of the text counts as space).
    let mut prev = 1u64;
    let mut start = 0usize;
    for (block, chunk) in lower.chunks(64).enumerate() {
        let base = block * 64;
        let space = if chunk.len() == 64 {
            space_mask(chunk)
        } else {
            let mut padded = [b' '; 64];
            padded[..chunk.len()].copy_from_slice(chunk);
            space_mask(&padded)
        };
        // Positions where the class changes from the previous byte.
        let mut changes = space ^ ((space << 1) | prev);
        prev = space >> 63;
        while changes != 0 {
            let j = changes.trailing_zeros() as usize;
            changes &= changes - 1;
            if space >> j & 1 == 0 {
                start = base + j;
            } else {
                f(&lower[start..(base + j).min(lower.len())]);
            }
        }
    }
    if prev == 0 {
        f(&lower[start..]);
    }
}

/// Bit `j` set when byte `j` of a 64-byte ASCII block is white space
/// (space, \t, \n, \x0b, \x0c, \r: what `char::is_whitespace` accepts below
/// 128), computed eight bytes at a time without branches.
#[inline]
fn space_mask(block: &[u8]) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut mask = 0u64;
    for (i, word) in block.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(word);
        let x = u64::from_le_bytes(b);
        // High bit of each byte equal to 0x20 (exact for any byte).
        let t = x ^ (ONES * 0x20);
        let space = !(((t & LO7) + LO7) | t) & HI;
        // High bit of each byte in 0x09..=0x0d (bytes are ASCII: no carries).
        let at_least_9 = x + ONES * (0x80 - 0x09);
        let at_least_14 = x + ONES * (0x80 - 0x0e);
        let control = at_least_9 & !at_least_14 & HI;
        // Gather the eight high bits into one byte (bit i = byte i).
        let bits = (((space | control) >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        mask |= bits << (8 * i);
    }
    mask
}

#[cfg(test)]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Turns a stream of word hashes into n-gram hashes.
struct Grams<F> {
    n: usize,
    seed: u64,
    f: F,
    /// Each word hash is written twice, at slot `w % n` and `w % n + n`, so
    /// the last `n` words are always one contiguous run of bytes.
    ring: [u8; 2 * MAX_SHINGLE_WORDS * 8],
    /// Words seen so far.
    words: usize,
    /// `words % n`, kept without a division.
    slot: usize,
}

impl<F: FnMut(u64)> Grams<F> {
    fn new(n: usize, seed: u64, f: F) -> Self {
        Grams {
            n: n.clamp(1, MAX_SHINGLE_WORDS),
            seed,
            f,
            ring: [0; 2 * MAX_SHINGLE_WORDS * 8],
            words: 0,
            slot: 0,
        }
    }

    #[inline]
    fn push(&mut self, word: u64) {
        let n = self.n;
        let slot = self.slot;
        self.slot = if slot + 1 == n { 0 } else { slot + 1 };
        let bytes = word.to_le_bytes();
        self.ring[slot * 8..slot * 8 + 8].copy_from_slice(&bytes);
        self.ring[(slot + n) * 8..(slot + n) * 8 + 8].copy_from_slice(&bytes);
        self.words += 1;
        if self.words >= n {
            let from = (slot + 1) * 8;
            (self.f)(xxh3_64_with_seed(&self.ring[from..from + n * 8], self.seed));
        }
    }

    fn finish(mut self) {
        if self.words > 0 && self.words < self.n {
            (self.f)(xxh3_64_with_seed(&self.ring[..self.words * 8], self.seed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_words_match_split_whitespace() {
        let alphabet = b"aB \t\n\r\x0b\x0cz.Q\x1f";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..300 {
            x = super::super::hash::mix64(x);
            let text: Vec<u8> = (0..len)
                .map(|i| {
                    alphabet
                        [(super::super::hash::mix64(x ^ i as u64) % alphabet.len() as u64) as usize]
                })
                .collect();
            let text = std::str::from_utf8(&text).unwrap();
            let mut got = Vec::new();
            ascii_words(text.as_bytes(), |w| got.push(w.to_vec()));
            let want: Vec<Vec<u8>> = text
                .split_whitespace()
                .map(|w| w.to_lowercase().into_bytes())
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
        for b in 0u8..128 {
            let block = [b; 64];
            assert_eq!(space_mask(&block) == !0, is_space(b), "byte {b:#x}");
            assert_eq!(is_space(b), (b as char).is_whitespace(), "byte {b:#x}");
        }
    }

    #[test]
    fn ascii_and_unicode_paths_agree() {
        // The trailing "é" sends the first text down the Unicode path.
        let mixed = shingle("HELLO big\u{a0}World é", 1, 5);
        let ascii = shingle("hello big world", 1, 5);
        assert_eq!(&mixed[..3], &ascii[..]);
        assert_eq!(shingle("ÉCOLE Straße", 1, 0), shingle("école straße", 1, 0));
    }

    #[test]
    fn windows_slide_in_order() {
        let words: Vec<u64> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|w| xxh3_64_with_seed(w.as_bytes(), 0))
            .collect();
        let grams = shingle("a b c d e", 3, 0);
        assert_eq!(grams.len(), 3);
        let bytes = |ws: &[u64]| ws.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        for (i, g) in grams.iter().enumerate() {
            assert_eq!(*g, xxh3_64_with_seed(&bytes(&words[i..i + 3]), 0));
        }
        // Capitalised text beyond the stack buffer takes the allocating path.
        let long = "Xy ".repeat(1000);
        assert!(long.len() > STACK_TEXT);
        assert_eq!(shingle(&long, 1, 0), shingle(&long.to_lowercase(), 1, 0));
    }
}
