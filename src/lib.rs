//! tollgate: an OAuth2 app-to-app security sidecar.
//! Inbound, it validates JWT access tokens and enforces route policy before forwarding;
//! outbound, it acquires client-credentials tokens and attaches them.
#![forbid(unsafe_code)]

pub mod config;
