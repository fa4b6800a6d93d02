//! cosign-compatible key-based signatures and attestations: the keys
//! ([`key`]) and what is signed ([`payload`]). Where signatures are stored
//! (the `sha256-<hex>.sig` tag, OCI referrers) is the engine's business,
//! with the registry client.

/// ECDSA P-256 key pairs in cosign's encrypted format.
pub mod key;
/// Simple-signing claims, in-toto statements, DSSE envelopes.
pub mod payload;

pub use key::{PrivateKey, PublicKey};

/// Why a key could not be used or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key file is not what it should be.
    #[error("{0}")]
    Key(String),
    /// The password does not open the key.
    #[error("the password does not decrypt the key (set BERTH_PASSWORD or COSIGN_PASSWORD to the one it was generated with)")]
    Password,
    /// A cryptographic primitive failed.
    #[error("{0}")]
    Crypto(String),
    /// A signature does not verify.
    #[error("invalid signature: {0}")]
    BadSignature(String),
    /// A valid signature for another image (the image changed since it was
    /// signed, or a signature was copied to it).
    #[error("the signature is for {signed}, but the image is {actual} (the image changed after it was signed: sign the new one, or use the digest that was signed)")]
    DigestMismatch {
        /// The digest the claim names.
        signed: String,
        /// The digest of the image verified.
        actual: String,
    },
    /// Nothing to verify: no signature or attestation is attached.
    #[error("{0}")]
    NotFound(String),
    /// A bad argument (predicate type or file).
    #[error("{0}")]
    Invalid(String),
}

impl SignError {
    /// Is this a verification refusal (cosign exits 1 for those) rather
    /// than a failure to use a key?
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SignError::BadSignature(_) | SignError::DigestMismatch { .. } | SignError::NotFound(_)
        )
    }
}
