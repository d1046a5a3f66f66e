//! Ferry node: a relay network that pays its operators for carrying video.
//!
//! The folders follow the roles a node plays. The data path, top to bottom: [`content`] (publish, store) →
//! [`relay`] (serve against receipts) → [`viewer`] (fetch, verify, sign a receipt per chunk) → [`money`] (the
//! ledger, settling on [`chain`], earnings). [`p2p`] is the network and [`p2p::protocol`] its spec; [`api`] is what
//! a node serves over HTTP (the players' gateway, metrics); [`commands`] are the `ferry` commands.

pub mod api;
pub mod audit;
pub mod chain;
pub mod commands;
pub mod config;
pub mod content;
pub mod devchain;
pub mod doctor;
pub mod faults;
pub mod identity;
pub mod metrics;
pub mod money;
pub mod p2p;
pub mod relay;
pub mod viewer;

/// Re-exported so tests and tools speak to a node with the same libp2p the node uses.
pub use libp2p;
pub use libp2p_stream;
