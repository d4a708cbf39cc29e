//! The handlespace checksum of RFC 5353 §3.6 (spec digest §7.16): per owner,
//! the Internet checksum (RFC 1071) over, for every PE it owns, the pool
//! handle zero-padded to an even length followed by the PE identifier.
//!
//! Kept incrementally: each owner holds the plain sum of the 16-bit words of
//! its PEs' blocks in a `u64` (no folding, so removing a PE is a subtraction);
//! folding and inverting happen only when the checksum is read. An owner with
//! no PEs has checksum 0xFFFF.

/// Sum of the big-endian 16-bit words of `bytes`, an odd final byte taken as
/// the high byte of a word (i.e. zero-padded).
pub fn word_sum(bytes: &[u8]) -> u64 {
    // Four words at a time: add them pairwise in two 32-bit lanes, then the
    // lanes (a pool handle of at most 32 bytes is four such steps).
    const LOW_WORDS: u64 = 0x0000_ffff_0000_ffff;
    let mut quads = bytes.chunks_exact(8);
    let mut sum = 0u64;
    for q in quads.by_ref() {
        let x = u64::from_be_bytes([q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]]);
        let lanes = ((x >> 16) & LOW_WORDS) + (x & LOW_WORDS);
        sum += (lanes >> 32) + (lanes & 0xffff_ffff);
    }
    let mut words = quads.remainder().chunks_exact(2);
    sum += words
        .by_ref()
        .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u64>();
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The contribution of one PE: its pool handle's word sum (precomputed per
/// pool) plus the two words of its identifier.
pub const fn pe_sum(handle_sum: u64, pe_id: u32) -> u64 {
    handle_sum + (pe_id >> 16) as u64 + (pe_id & 0xffff) as u64
}

/// Folds a word sum with end-around carry and takes the one's complement.
pub const fn finish(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The checksum computed from scratch over `(pool handle, PE id)` pairs; the
/// reference the incremental sums are tested against.
pub fn from_scratch<'a>(pes: impl IntoIterator<Item = (&'a [u8], u32)>) -> u16 {
    let mut block = Vec::new();
    for (handle, id) in pes {
        block.extend_from_slice(handle);
        block.resize(block.len().next_multiple_of(4), 0);
        block.extend_from_slice(&id.to_be_bytes());
    }
    finish(word_sum(&block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_sum_is_the_sum_of_padded_words() {
        let bytes: Vec<u8> = (0..80u32).map(|i| (i * 37 + 201) as u8).collect();
        for n in 0..bytes.len() {
            let b = &bytes[..n];
            let want: u64 = (0..n)
                .step_by(2)
                .map(|i| u64::from(b[i]) << 8 | b.get(i + 1).map_or(0, |&x| u64::from(x)))
                .sum();
            assert_eq!(word_sum(b), want, "{n} bytes");
        }
        assert_eq!(word_sum(&[0xff; 64]), 32 * 0xffff);
    }

    #[test]
    fn spec_digest_worked_example() {
        // §12.5: "EchoService" with PE 0x1a2b3c4d and 0x5e6f7081 -> 0x5672;
        // without the second PE -> 0x6775; empty -> 0xffff.
        let h = b"EchoService";
        let hs = word_sum(h);
        assert_eq!(
            finish(pe_sum(hs, 0x1a2b_3c4d) + pe_sum(hs, 0x5e6f_7081)),
            0x5672
        );
        assert_eq!(finish(pe_sum(hs, 0x1a2b_3c4d)), 0x6775);
        assert_eq!(finish(0), 0xffff);
        assert_eq!(
            from_scratch([(&h[..], 0x1a2b_3c4d), (&h[..], 0x5e6f_7081)]),
            0x5672
        );
    }
}
