//! The viewer: fetching and verifying chunks from relays, and paying for each with a signed receipt.

pub mod fetch;
pub mod load;
pub mod session;
pub mod watch;
