//! tollgate: an OAuth2 app-to-app security sidecar.
//! Inbound, it validates JWT access tokens and enforces route policy before forwarding;
//! outbound, it acquires client-credentials tokens and attaches them.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod demo;
pub mod devissuer;
pub mod digest;
pub mod explain;
pub mod idp;
pub mod inbound;
pub mod logging;
pub mod metrics;
pub mod online;
pub mod outbound;
pub mod proxy;
pub mod readiness;
pub mod reload;
pub mod reply;
pub mod secret;
pub mod served_path;
pub mod server;
pub mod sidecar;
pub mod trust;
