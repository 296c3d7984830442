//! Strongroom: a PKCS#11 software HSM.
//!
//! `unsafe` code lives only in [`ffi`]; everything else is safe Rust.
#![deny(unsafe_code)]
// CK_ULONG is 64 bits here but 32 bits on i686 and Windows: the u64::from
// and try_from conversions that look useless on x86_64 are what keep the
// crate correct there.
#![allow(clippy::useless_conversion, clippy::unnecessary_cast)]

pub mod admin;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod handle_map;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod session;
pub mod store;
pub mod token;
