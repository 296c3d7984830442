//! Crypto provider (being written).
