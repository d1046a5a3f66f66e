//! The relay: serving verified chunks against receipts, within rate limits and what each viewer's lane covers.

pub mod rate_limit;
mod run;
pub mod serve;
pub mod signatures;

pub use run::{run, ApiOptions, ChainOptions, RelayOptions};
