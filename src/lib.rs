//! Strongroom: a PKCS#11 software HSM.
//!
//! `unsafe` code lives only in [`ffi`]; everything else is safe Rust.
#![deny(unsafe_code)]

pub mod crypto;
pub mod error;
pub mod object;
pub mod store;
#[allow(unsafe_code)]
pub mod ffi;
