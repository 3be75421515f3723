//! SHA-256 as a plain array (token memory keys, config fingerprints, certificate
//! thumbprints).

use aws_lc_rs::digest;

pub type Sha256 = [u8; 32];

pub fn sha256(bytes: &[u8]) -> Sha256 {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
