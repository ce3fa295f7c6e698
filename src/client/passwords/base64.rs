//! Standard base64 (RFC 4648, with padding) decoding, for the salt and keys of a stored SCRAM
//! verifier. Strict: wrong length, bad characters or misplaced padding are refused, because a
//! verifier that does not round-trip is treated as a plain-text password, as Postgres does.

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decode padded standard base64; `None` when `s` is not exactly that.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let quads = s.len() / 4;
    for (n, quad) in s.chunks_exact(4).enumerate() {
        let last = n + 1 == quads;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &quad[..4 - pad] {
            acc = (acc << 6) | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn rfc_4648_vectors_decode() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(decode(enc).as_deref(), Some(dec.as_bytes()), "{enc}");
        }
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm9"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
