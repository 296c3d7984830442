//! Strongroom: a PKCS#11 software HSM.
//!
//! `unsafe` code lives only in [`ffi`]; everything else is safe Rust.
#![deny(unsafe_code)]

pub mod config;
pub mod crypto;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod session;
pub mod store;
pub mod token;
