//! Sender-constrained credentials (docs/CONFIG.md, "Client certificates and DPoP"): the client
//! certificates the listener asks for, a certificate as a credential, DPoP proofs.

use std::collections::HashMap;

use crate::auth::dpop::{DpopSettings, Nonces};

/// `[server.tls] client_ca_file`, `client_auth`, `client_crl_files`: read at every (re)load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCerts {
    /// DER certificates of the CAs client certificates must chain to.
    pub roots: Vec<Vec<u8>>,
    /// DER CRLs.
    pub crls: Vec<Vec<u8>>,
    /// `"required"`: the handshake fails without a certificate.
    pub required: bool,
}

/// Which name of a certificate is its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertName {
    UriSan,
    DnsSan,
    Cn,
}

/// `[mtls]`.
#[derive(Debug, Clone)]
pub(crate) struct MtlsSettings {
    /// The first present names the subject.
    pub subject_from: Vec<CertName>,
    /// Subject -> roles.
    pub roles: HashMap<String, Vec<String>>,
    pub default_roles: Vec<String>,
}

/// `[dpop]`, with the nonces every instance sharing the config's signing key agrees on.
#[derive(Debug)]
pub(crate) struct Dpop {
    pub settings: DpopSettings,
    pub nonces: Nonces,
}
