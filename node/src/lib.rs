//! Ferry node: a relay network that pays its operators for carrying video.
//!
//! The data path, top to bottom: [`publish`] → [`store`] → [`serve`] (relay) → [`fetch`] (viewer: verify) →
//! [`session`] (receipt) → [`ledger`] → [`settle`] (on [`chain`]) → [`earnings`]. The [`p2p`] module is the
//! network and [`p2p::protocol`] its spec; [`gateway`] hands verified video to players; [`lanes`] is the relay's
//! book of what each viewer's lane still covers, and [`funding`] the paying side's lane opener.

pub mod chain;
pub mod config;
pub mod devchain;
pub mod doctor;
pub mod earnings;
pub mod faults;
pub mod fetch;
pub mod funding;
pub mod gateway;
pub mod identity;
pub mod lanes;
pub mod ledger;
pub mod load;
pub mod metrics;
pub mod p2p;
pub mod playlist;
pub mod publish;
pub mod rate_limit;
pub mod relay;
pub mod serve;
pub mod session;
pub mod settle;
pub mod signatures;
pub mod store;
pub mod watch;

/// Re-exported so tests and tools speak to a node with the same libp2p the node uses.
pub use libp2p;
