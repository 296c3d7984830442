//! strongroom-keyd: a key service for databases doing transparent data
//! encryption, backed by a PKCS#11 token (reached only through the module).
//!
//! Who holds which key:
//!
//! ```text
//!  token (PKCS#11)                 keyd database (SQLite)            client (MariaDB ...)
//!  ---------------                 ----------------------            --------------------
//!  master key keyd-master-<n>      KWP(master, DEK(id, version))     DEK(id, version) in RAM,
//!  AES-256, sensitive,             client token SHA-256 + policy      fetched over HTTP
//!  never extractable               audit log (no key values)
//! ```
//!
//! The service logs in as its own crypto user (`config`), listens with TLS
//! off loopback (`server`), answers the Vault and KMS APIs (`http`) and keeps
//! keys, clients, grants, rotation periods and the audit log (`service`,
//! `store`); `token` is everything it asks of the PKCS#11 token. `main.rs` is
//! the command line.

pub mod config;
pub mod http;
pub mod server;
pub mod service;
pub mod store;
pub mod token;
