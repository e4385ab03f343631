//! The admission rules built from config: the `Origin` allowlist, the new-session rates
//! (per client and global) and the concurrent-session caps. Each config generation holds
//! its origin policies and rate limits; the caps outlive reloads (their limits change in
//! place). [`crate::admission`] applies them; this module decides nothing on its own.

mod caps;
mod origin;
mod rate;

pub use caps::{CapRefusal, SessionCaps, SessionSlot};
pub use origin::{OriginCheck, OriginPolicy};
pub use rate::{RateLimits, RateRefusal};
