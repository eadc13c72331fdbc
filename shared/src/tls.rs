//! TLS setup shared by every HTTP and SMTP client of both binaries.
//!
//! reqwest and lettre are built with rustls but without a default crypto
//! provider (the default, aws-lc-rs, needs a long native build); the ring
//! provider is installed once per process instead.

/// Installs the ring crypto provider as the process default. Every
/// `reqwest::Client` is built after this (building one without a provider
/// panics). Installing twice is harmless: the "already installed" answer is
/// ignored, so each component can call this before building its clients.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
