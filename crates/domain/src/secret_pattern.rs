//! Regular expressions that recognise this deployment's tokens in text (a repository, a log, a
//! ticket), one per key set, for secret scanners: GitHub's custom patterns, gitleaks, trufflehog.
//!
//! The tokens stay plain RS256 JWTs; what makes them recognisable is what the service keeps fixed
//! about them: the header is `{"alg":"RS256","kid":"<43 characters>","typ":"JWT"}` (the members
//! in that order, the kid a SHA-256 JWK thumbprint), the payload starts with
//! `{"iss":"<the key set's issuer>","sub":"`, and the signature is RSA-2048 (256 bytes). In
//! base64url, a fixed prefix of bytes becomes a fixed prefix of characters, and a character that
//! spans fixed and varying bytes becomes a class of the characters its fixed bits allow. So the
//! header matches any kid, and the payload's first characters name the issuer, closing quote
//! included: another deployment, or another key set of the same one (`.../v1/access-tokens` is a
//! prefix of `.../v1/access-tokens/public`, but `...tokens"` is not of `...tokens/`), never
//! matches. The syntax is character classes, literals and counted repetition only: RE2 and PCRE
//! read it alike.

/// The characters of base64url, by value.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Any base64url character, as a class.
const ANY: &str = "[A-Za-z0-9_-]";
/// The fixed start of a header; a kid of [`KID_CHARS`] and [`HEADER_END`] follow.
const HEADER_START: &[u8] = br#"{"alg":"RS256","kid":""#;
const KID_CHARS: usize = 43;
const HEADER_END: &[u8] = br#"","typ":"JWT"}"#;
/// An RS256 signature by an RSA-2048 key, in base64url without padding.
const SIGNATURE_CHARS: usize = 342;

/// What a byte of the encoded text may be.
#[derive(Clone, Copy)]
enum Byte {
    Is(u8),
    /// A character of base64url (the kid's).
    Base64url,
    /// Anything (what follows a fixed prefix).
    Any,
}

impl Byte {
    fn values(self) -> Vec<u8> {
        match self {
            Byte::Is(b) => vec![b],
            Byte::Base64url => ALPHABET.to_vec(),
            Byte::Any => (0..=255).collect(),
        }
    }
}

/// The pattern of the base64url encoding of `bytes`. With `open_end`, the text goes on past
/// them (a prefix): the characters its last bytes share with what follows are classes of what
/// the fixed bits allow, and none is emitted for bits that are all unknown.
fn encode(bytes: &[Byte], open_end: bool) -> String {
    let bits = bytes.len() * 8;
    let chars = bits.div_ceil(6);
    let mut out = String::new();
    for i in 0..chars {
        let first = i * 6;
        // The byte(s) this character's six bits come from; past the end: zero padding, or
        // (with `open_end`) any byte.
        let at = |k: usize| -> Vec<u8> {
            match bytes.get(k) {
                Some(b) => b.values(),
                None if open_end => Byte::Any.values(),
                None => vec![0],
            }
        };
        let (a, b) = (first / 8, (first + 5) / 8);
        // A character of the kid's: any character (what it allows beyond the kid's alphabet
        // is no other deployment's token: those differ in the payload).
        if [a, b]
            .iter()
            .any(|k| matches!(bytes.get(*k), Some(Byte::Base64url)))
        {
            out.push_str(ANY);
            continue;
        }
        let mut values = [false; 64];
        for x in at(a) {
            for y in if b == a { vec![0] } else { at(b) } {
                let word = (u16::from(x) << 8) | u16::from(y);
                let shift = 16 - 6 - (first % 8);
                values[usize::from((word >> shift) & 0x3f)] = true;
            }
        }
        out.push_str(&class(&values));
    }
    counted(&out)
}

/// `[A-Za-z0-9_-]` repeated, as one counted class.
fn counted(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(ANY) {
        out.push_str(&rest[..at]);
        let mut n = 0;
        while rest[at + n * ANY.len()..].starts_with(ANY) {
            n += 1;
        }
        if n == 1 {
            out.push_str(ANY);
        } else {
            out.push_str(&format!("{ANY}{{{n}}}"));
        }
        rest = &rest[at + n * ANY.len()..];
    }
    out.push_str(rest);
    out
}

/// A literal for one allowed character, else a class of the allowed ones.
fn class(values: &[bool; 64]) -> String {
    let allowed: Vec<char> = (0..64)
        .filter(|v| values[*v])
        .map(|v| ALPHABET[v] as char)
        .collect();
    match allowed.as_slice() {
        [one] if one.is_ascii_alphanumeric() => one.to_string(),
        [one] => format!("[{one}]"),
        all if all.len() == 64 => ANY.to_owned(),
        some => {
            // `-` last, so that it is a character and not a range.
            let mut text: String = some.iter().filter(|c| **c != '-').collect();
            if some.contains(&'-') {
                text.push('-');
            }
            format!("[{text}]")
        }
    }
}

/// The pattern of every token of the key set whose issuer is `issuer` (`iss`, as the key set's
/// discovery document names it).
pub fn pattern(issuer: &str) -> String {
    let header: Vec<Byte> = HEADER_START
        .iter()
        .map(|b| Byte::Is(*b))
        .chain(std::iter::repeat_n(Byte::Base64url, KID_CHARS))
        .chain(HEADER_END.iter().map(|b| Byte::Is(*b)))
        .collect();
    let payload: Vec<Byte> = format!(r#"{{"iss":"{issuer}","sub":""#)
        .bytes()
        .map(Byte::Is)
        .collect();
    format!(
        r"{}\.{}{ANY}*\.{ANY}{{{SIGNATURE_CHARS}}}",
        encode(&header, false),
        encode(&payload, true),
    )
}

/// A literal every token of every key set starts with: the keyword a scanner filters on before
/// it runs the patterns (gitleaks' `keywords`).
pub fn keyword() -> String {
    let start: Vec<Byte> = HEADER_START.iter().map(|b| Byte::Is(*b)).collect();
    let text = encode(&start, true);
    // The fixed characters only: the classes at the end are left out.
    text.split('[').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn a_closed_encoding_is_the_encoding_itself() {
        for text in ["", "a", "ab", "abc", r#"{"alg":"RS256"}"#] {
            let bytes: Vec<Byte> = text.bytes().map(Byte::Is).collect();
            assert_eq!(encode(&bytes, false), URL_SAFE_NO_PAD.encode(text));
        }
    }

    #[test]
    fn the_header_pattern_starts_as_every_header_does() {
        let p = pattern("https://tokens.example.com/v1/access-tokens");
        assert!(p.starts_with("eyJhbGciOiJSUzI1NiIsImtpZCI6I"), "{p}");
        assert!(keyword().starts_with("eyJhbGciOiJSUzI1NiIsImtpZCI6"));
    }
}
