//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` of
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the bytes of the endpoint's secret
//! (`whsec_` and their base64), so that receivers verify with the specification's published
//! libraries. While a rotated secret still signs, the header carries both signatures, space
//! separated, as the specification allows.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// The prefix of a secret as shown to its endpoint's owner.
const PREFIX: &str = "whsec_";
/// Random bytes in a new secret.
const SECRET_BYTES: usize = 32;

/// A new secret: its bytes (to seal) and its text (`whsec_...`, shown once).
pub fn generate() -> (SecretBox<Vec<u8>>, SecretString) {
    let mut bytes = vec![0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    let text = format!("{PREFIX}{}", STANDARD.encode(&bytes));
    (SecretBox::new(Box::new(bytes)), SecretString::from(text))
}

/// The text of a secret, from its bytes.
pub fn text(secret: &[u8]) -> SecretString {
    SecretString::from(format!("{PREFIX}{}", STANDARD.encode(secret)))
}

/// One signature, `v1,<base64>`.
pub fn sign(secret: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(message_id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

/// The `webhook-signature` header: a signature by each secret, space separated.
pub fn header(
    secrets: &[&SecretBox<Vec<u8>>],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| sign(s.expose_secret(), message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(text: &str) -> Vec<u8> {
        STANDARD.decode(text.strip_prefix(PREFIX).unwrap()).unwrap()
    }

    #[test]
    fn signatures_match_the_specifications_test_vector() {
        // The Standard Webhooks specification's vector, verified by every library it publishes.
        let secret = bytes_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_new_secret_reads_back_to_its_bytes_and_both_secrets_sign_during_a_rotation() {
        let (old, _) = generate();
        let (new, text) = generate();
        assert!(text.expose_secret().starts_with(PREFIX));
        assert_eq!(&bytes_of(text.expose_secret()), new.expose_secret());
        let both = header(&[&new, &old], "msg_1", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(new.expose_secret(), "msg_1", 1, b"{}"));
        assert_eq!(parts[1], sign(old.expose_secret(), "msg_1", 1, b"{}"));
    }
}
