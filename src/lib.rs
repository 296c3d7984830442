//! Strongroom: a PKCS#11 software HSM.
//!
//! `unsafe` code lives only in [`ffi`]; everything else is safe Rust.
#![deny(unsafe_code)]

pub mod crypto;
pub mod config;
pub mod error;
pub mod mechanism;
pub mod module;
pub mod session;
pub mod token;
pub mod object;
pub mod store;
#[allow(unsafe_code)]
pub mod ffi;
