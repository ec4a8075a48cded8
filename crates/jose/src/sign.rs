//! Signing: one aws-lc-rs RSA key pair per active key, parsed once, and the compact JWS
//! assembled here. (`jsonwebtoken::encode` re-parses the private key on every call, about 3x
//! slower.)

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
        let header = serde_json::json!({ "alg": "RS256", "typ": crate::jws::TYP_JWT, "kid": kid });
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
        let mut members = serde_json::Map::new();
        members.insert("typ".to_owned(), typ.into());
        self.sign_with_members(&members, claims)
    }

    /// Signs `claims` under a header of `members` besides `alg` and `kid`, which are always
    /// RS256 and this key's whatever `members` say. For tests of what a verifier does with a
    /// header it does not expect (a `crit` member, say); the service signs with [`Self::sign`]
    /// and [`Self::sign_typed`] only.
    pub fn sign_with_members<C: Serialize>(
        &self,
        members: &serde_json::Map<String, serde_json::Value>,
        claims: &C,
    ) -> Result<String, SignError> {
        let mut header = members.clone();
        header.insert("alg".to_owned(), "RS256".into());
        header.insert("kid".to_owned(), self.kid.clone().into());
        let header = serde_json::to_vec(&header)?;
        self.sign_with_header(&URL_SAFE_NO_PAD.encode(header), claims)
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

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use serde_json::{Value, json};

    use super::*;
    use crate::jwk::PublicJwk;
    use crate::{Error, VerifyingKey, jws};

    fn key() -> (SigningKey, PublicJwk, Vec<u8>) {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let jwk = PublicJwk::from_key_pair(&pair);
        let der = pair.as_der().unwrap().as_ref().to_vec();
        (SigningKey::new(jwk.thumbprint(), pair), jwk, der)
    }

    #[test]
    fn signed_tokens_verify_here_and_with_jsonwebtoken_and_tampering_fails() {
        let (signing, jwk, _) = key();
        let claims = json!({"iss": "https://i.example", "sub": "u-1", "n": 1});
        let token = signing.sign(&claims).unwrap();
        let verifying = VerifyingKey::from_jwk(&jwk).unwrap();

        let parsed = jws::parse(&token).unwrap();
        assert_eq!(parsed.kid(), Ok(signing.kid()));
        assert_eq!(parsed.header.typ.as_deref(), Some("JWT"));
        assert_eq!(Value::Object(parsed.verify(&verifying).unwrap()), claims);

        // The independent oracle.
        let oracle = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        let decoded = jsonwebtoken::decode::<Value>(&token, &oracle, &validation).unwrap();
        assert_eq!(decoded.claims, claims);

        // One bit of the payload changed, or another key: the signature fails.
        let (header, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(r#"{"iss":"https://i.example","sub":"u-1","n":2}"#);
        let forged = format!("{header}.{forged_payload}.{signature}");
        assert_eq!(
            jws::parse(&forged).unwrap().verify(&verifying),
            Err(Error::Signature)
        );
        let (_, other, _) = key();
        let other = VerifyingKey::from_jwk(&other).unwrap();
        assert_eq!(parsed.verify(&other), Err(Error::Signature));
    }

    #[test]
    fn tokens_signed_by_jsonwebtoken_verify_here() {
        let (signing, jwk, der) = key();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(signing.kid().to_owned());
        let claims = json!({"iss": "https://i.example", "sub": "u-1"});
        // aws-lc writes PKCS#8; jsonwebtoken reads PKCS#1 DER, the OCTET STRING that an RSA-2048
        // PKCS#8 document holds after its fixed 26-byte prefix (RFC 5208 section 5).
        assert_eq!(der[4..22], hex_prefix(), "an RSA PKCS#8 document");
        let encoding = jsonwebtoken::EncodingKey::from_rsa_der(&der[26..]);
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let verifying = VerifyingKey::from_jwk(&jwk).unwrap();
        let parsed = jws::parse(&token).unwrap();
        assert_eq!(Value::Object(parsed.verify(&verifying).unwrap()), claims);
    }

    /// version 0, then the rsaEncryption AlgorithmIdentifier with NULL parameters.
    fn hex_prefix() -> [u8; 18] {
        [
            0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
            0x01, 0x01, 0x05, 0x00,
        ]
    }

    #[test]
    fn a_typed_token_carries_its_typ() {
        let (signing, _, _) = key();
        let token = signing.sign_typed("statuslist+jwt", &json!({})).unwrap();
        let parsed = jws::parse(&token).unwrap();
        assert_eq!(parsed.header.typ.as_deref(), Some("statuslist+jwt"));
    }
}
