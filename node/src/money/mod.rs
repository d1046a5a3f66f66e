//! Money: the durable ledger of receipts, funding lanes, what each lane covers at a relay, settling on chain, and what an operator has earned.

pub mod earnings;
pub mod funding;
pub mod lanes;
pub mod ledger;
pub mod settle;
