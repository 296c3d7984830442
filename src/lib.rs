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

/// String equality that never calls `memcmp` on an empty string. An empty
/// `String` points at a dangling address; glibc's AVX-512 `memcmp` reads it
/// with a masked vector load, and the masked-out fault on that unmapped page
/// costs a microcode assist (~0.5 us) on every comparison. The default user's
/// name and most owners are empty, and this runs on every key use.
pub(crate) fn same_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}
