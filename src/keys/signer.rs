//! Signing: one `aws_lc_rs` RSA key pair per active key, parsed once, and the compact JWS
//! assembled here. (`jsonwebtoken::encode` re-parses the private key on every call, about 3x
//! slower; it is kept for verifying only.)

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

pub struct SigningKey {
    kid: String,
    pair: KeyPair,
    /// `base64url({"alg":"RS256","typ":"JWT","kid":...})`, encoded once.
    header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("claims could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("RSA signing failed")]
    Sign,
}

impl SigningKey {
    pub fn new(kid: String, pair: KeyPair) -> Self {
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Self {
            kid,
            pair,
            header_b64,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as a compact RS256 JWS (RFC 7515 section 7.1).
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SignError> {
        self.sign_with_header(&self.header_b64, claims)
    }

    /// Signs `claims` with `typ` in the header instead of `JWT` (a status list is a
    /// `statuslist+jwt`); rare enough that its header is encoded per call.
    pub fn sign_typed<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, SignError> {
        let header = serde_json::json!({ "alg": "RS256", "typ": typ, "kid": self.kid });
        self.sign_with_header(&URL_SAFE_NO_PAD.encode(header.to_string()), claims)
    }

    fn sign_with_header<C: Serialize>(
        &self,
        header_b64: &str,
        claims: &C,
    ) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims)?;
        let sig_len = self.pair.public_modulus_len();
        let mut jwt = String::with_capacity(
            header_b64.len() + 2 + payload.len().div_ceil(3) * 4 + sig_len.div_ceil(3) * 4,
        );
        jwt.push_str(header_b64);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let mut signature = vec![0u8; sig_len];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, jwt.as_bytes(), &mut signature)
            .map_err(|_| SignError::Sign)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }
}
