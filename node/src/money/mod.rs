//! Money: the durable ledger of receipts, funding lanes, settling on chain, and what an operator has earned.

pub mod earnings;
pub mod funding;
pub mod ledger;
pub mod settle;
