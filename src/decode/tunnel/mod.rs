//! Tunnel headers: VXLAN, Geneve, GRE (with ERSPAN), WireGuard.
//!
//! None of these is covered by etherparse, so each has a small zero-copy
//! view here, in the style of smoltcp's `wire` module.

pub mod geneve;
pub mod gre;
pub mod vxlan;
pub mod wireguard;

pub use geneve::GeneveView;
pub use gre::GreView;
pub use vxlan::VxlanView;
pub use wireguard::{WireGuardMessage, WireGuardView};
