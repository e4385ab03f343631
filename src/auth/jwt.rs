//! `auth: jwt`: the verification key read from `jwt.key_file`, checked at load time with
//! the same parsers the verifier uses, and the verification of a presented token.
//!
//! Only the route's algorithm is accepted: a token whose header names another one (or
//! `none`) is refused before any signature work. `exp` is required; `nbf` is checked when
//! present; `aud` and `iss` are required and checked when the route sets them, and ignored
//! otherwise. JWT times are whole seconds, so the leeway is used in whole seconds.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;

use super::credential::Secret;
use super::{AuthError, problem};
use crate::config::units::format_duration;
use crate::config::{JwtAlgorithm, JwtConfig, Problem};

/// Shortest HS256 secret accepted: the hash's output size (RFC 7518 section 3.2).
const MIN_HMAC_SECRET: usize = 32;
/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Longest leeway accepted: clock skew is seconds to minutes, and a huge leeway would
/// overflow the verifier's time arithmetic.
const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// A route's JWT key and rules. `Debug` shows the rules, not the key.
#[derive(Clone)]
pub(super) struct JwtVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .field("audience", &self.validation.aud)
            .field("issuer", &self.validation.iss)
            .field("leeway_secs", &self.validation.leeway)
            .finish_non_exhaustive()
    }
}

/// The claims we read ourselves; the verifier checks the registered ones. `sub` of another
/// type than string is ignored rather than refused.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<serde_json::Value>,
}

impl JwtVerifier {
    /// Reads and checks the key file and the rules of `cfg`.
    pub(super) fn load(
        cfg: &JwtConfig,
        key: &dyn Fn(&str) -> String,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let path = cfg.key_file.display();
        let decoding = std::fs::read(&cfg.key_file)
            .map_err(|e| format!("cannot read {path}: {e}"))
            .and_then(|bytes| {
                decoding_key(cfg.algorithm, &bytes).map_err(|why| format!("{path} {why}"))
            })
            .map_err(|message| problems.push(problem(key("jwt.key_file"), message)))
            .ok();
        if cfg.leeway > MAX_LEEWAY {
            let message = format!(
                "{} is longer than the {} allowed",
                format_duration(cfg.leeway),
                format_duration(MAX_LEEWAY)
            );
            problems.push(problem(key("jwt.leeway"), message));
        }
        for (field, value) in [("audience", &cfg.audience), ("issuer", &cfg.issuer)] {
            if value.as_deref() == Some("") {
                let message = "must not be empty (leave it out to not check it)";
                problems.push(problem(key(&format!("jwt.{field}")), message));
            }
        }
        match decoding {
            Some(decoding) if problems.is_empty() => Ok(Self::new(cfg, decoding)),
            _ => Err(problems),
        }
    }

    fn new(cfg: &JwtConfig, key: DecodingKey) -> Self {
        let algorithm = match cfg.algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = cfg.leeway.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = cfg.audience.is_some();
        let mut required = vec!["exp"];
        if let Some(audience) = &cfg.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        if let Some(issuer) = &cfg.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Self {
            algorithm,
            key,
            validation,
        }
    }

    /// Verifies `token`; returns its `sub` claim when it is a string. jsonwebtoken refuses
    /// a header naming another algorithm than the route's before any signature work.
    pub(super) fn verify(&self, token: &Secret) -> Result<Option<String>, AuthError> {
        let token = token.expose();
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| refusal(token, e.kind(), self.algorithm))?;
        Ok(match data.claims.sub {
            Some(serde_json::Value::String(sub)) => Some(sub),
            _ => None,
        })
    }
}

/// The verification key in `bytes` for `algorithm`, or what is wrong with it (a phrase
/// following the file's path, never quoting the file).
fn decoding_key(algorithm: JwtAlgorithm, bytes: &[u8]) -> Result<DecodingKey, String> {
    let is_pem = contains(bytes, b"-----BEGIN ");
    if algorithm != JwtAlgorithm::HS256 && is_pem && contains(bytes, b"PRIVATE KEY-----") {
        return Err("holds a private key: give the gateway only the public key \
                    (openssl pkey -in key.pem -pubout)"
            .into());
    }
    match algorithm {
        JwtAlgorithm::HS256 => {
            // A public key used as an HMAC secret would let anyone who has it sign tokens.
            if is_pem {
                return Err("holds a PEM key, but HS256 needs a shared secret \
                            (for a public key, use RS256 or ES256)"
                    .into());
            }
            let secret = trim_trailing_newlines(bytes);
            if secret.len() < MIN_HMAC_SECRET {
                return Err(format!(
                    "holds a {}-byte HS256 secret; at least {MIN_HMAC_SECRET} bytes are required",
                    secret.len()
                ));
            }
            Ok(DecodingKey::from_secret(secret))
        }
        JwtAlgorithm::RS256 => {
            let key = DecodingKey::from_rsa_pem(bytes)
                .map_err(|_| "is not an RSA public key in PEM form (RS256 needs one)")?;
            let rsa = RsaPublicKey::from_pkcs1_der(der(&key)?)
                .map_err(|_| "does not hold a usable RSA public key")?;
            let bits = rsa.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "holds a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
                ));
            }
            Ok(key)
        }
        JwtAlgorithm::ES256 => {
            let key = DecodingKey::from_ec_pem(bytes)
                .map_err(|_| "is not an EC public key in PEM form (ES256 needs one)")?;
            p256::ecdsa::VerifyingKey::from_sec1_bytes(der(&key)?)
                .map_err(|_| "holds an EC key that is not on curve P-256, which ES256 needs")?;
            Ok(key)
        }
    }
}

/// The key bytes the verifier will parse (what `from_*_pem` always produces).
fn der(key: &DecodingKey) -> Result<&[u8], String> {
    match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => Ok(der),
        DecodingKeyKind::RsaModulusExponent { .. } => Err("holds an unexpected key form".into()),
    }
}

fn trim_trailing_newlines(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r'))
        .map_or(0, |last| last + 1);
    &bytes[..end]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Why `token` was refused when jsonwebtoken's verdict was `kind`. A header it could not
/// read says which part is malformed, with one exception: a header naming an algorithm
/// jsonwebtoken does not implement (`alg: none`). Its `Header` type cannot hold such a
/// name and reports bad JSON, but the token is well formed and refused for its algorithm,
/// like one signed with another algorithm than the route's.
fn refusal(token: &str, kind: &ErrorKind, route_alg: Algorithm) -> AuthError {
    let Err(header) = jsonwebtoken::decode_header(token) else {
        return classify(kind);
    };
    match header.kind() {
        ErrorKind::InvalidToken => AuthError::Malformed("JWT is not three dot-separated parts"),
        ErrorKind::Base64(_) => AuthError::Malformed("JWT header is not base64url"),
        ErrorKind::Json(_) => match header_alg(token) {
            Some(alg) if alg.parse() == Ok(route_alg) => {
                AuthError::Malformed("JWT cannot be decoded")
            }
            Some(_) => AuthError::BadCredential,
            None => AuthError::Malformed("JWT header is not JSON with an alg"),
        },
        _ => classify(header.kind()),
    }
}

/// The `alg` string of a header jsonwebtoken could not read, if it has one.
fn header_alg(token: &str) -> Option<String> {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(header.get("alg")?.as_str()?.to_owned())
}

fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(_) => AuthError::Malformed("JWT has no exp"),
        ErrorKind::InvalidClaimFormat(_) => AuthError::Malformed("JWT claim has the wrong type"),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::Malformed("JWT cannot be decoded"),
        // Signature, algorithm and key mismatches, and anything added later.
        _ => AuthError::BadCredential,
    }
}
