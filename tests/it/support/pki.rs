//! A throw-away PKI for upstream TLS tests: a CA, a server certificate it signed for
//! `localhost` and 127.0.0.1, and a self-signed server certificate nobody trusts.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

pub struct Pki {
    /// Written as `ca.pem` in the folder; routes name it by that relative path.
    pub _ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
}

pub fn generate(dir: &Path) -> Pki {
    generate_for(dir, &["localhost", "127.0.0.1"])
}

/// The same, the server certificate naming `names` (host names or IP addresses).
pub fn generate_for(dir: &Path, names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // rcgen names every certificate alike: OpenSSL (curl) would take the server
    // certificate for a self-signed one, its issuer's name being its own.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tollgate test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(names.clone())
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let rogue_key = KeyPair::generate().unwrap();
    let rogue = CertificateParams::new(names)
        .unwrap()
        .self_signed(&rogue_key)
        .unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        _ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server.pem()),
        server_key: write("server.key", server_key.serialize_pem()),
        rogue_cert: write("rogue.pem", rogue.pem()),
        rogue_key: write("rogue.key", rogue_key.serialize_pem()),
    }
}
