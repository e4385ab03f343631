//! The operations surface: what orchestrators and operators ask of a running gateway.
//! The health and readiness probes and `/metrics` ([`probes`], answered on the main
//! listener's probe paths and on the admin listener), the admin listener itself
//! ([`admin`]), and the periodic backend check that readiness may depend on
//! ([`backend_check`]). The readiness state they read lives in [`crate::health`].

pub mod admin;
pub mod backend_check;
pub mod probes;
