//! Faults the end-to-end tests inject into a relay. Without the `fault-injection` cargo feature (only the tests
//! enable it) this is an empty type and every hook compiles to nothing: release builds carry no test switch and
//! no test branch on the serving path.

/// What to break, set from hidden `ferry relay` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Faults {
    /// Corrupt one payload byte of every transfer, at this offset into the transfer.
    #[cfg(feature = "fault-injection")]
    #[arg(long = "fault-flip-after", hide = true)]
    pub flip_after: Option<u64>,
    /// Quote and charge this price per MiB, whatever the relay registered on chain.
    #[cfg(feature = "fault-injection")]
    #[arg(long = "fault-quote-price", hide = true)]
    pub quote_price: Option<u128>,
    /// Offer viewers, as the latest receipt of their claim, one whose amount is this much more than the one held
    /// (or than nothing), which the viewer never signed.
    #[cfg(feature = "fault-injection")]
    #[arg(long = "fault-inflate-claim", hide = true)]
    pub inflate_claim: Option<u128>,
}

impl Faults {
    /// The price the relay quotes, given the one it should charge.
    #[inline(always)]
    pub fn price(&self, charged: u128) -> u128 {
        #[cfg(feature = "fault-injection")]
        if let Some(p) = self.quote_price {
            tracing::warn!(price_per_mib = %p, "fault injection: quoting a price other than the registered one");
            return p;
        }
        charged
    }

    /// The latest receipt of a claim that the relay offers its viewer to continue, given the one it holds.
    #[inline(always)]
    #[cfg_attr(not(feature = "fault-injection"), allow(unused_variables))]
    pub fn offered_last(
        &self,
        held: Option<ferry_primitives::SignedReceipt>,
        claim: ferry_primitives::ClaimId,
        relay: ferry_primitives::AccountId,
        viewer: ferry_primitives::AccountId,
        content: ferry_primitives::ContentId,
        domain: ferry_primitives::Domain,
    ) -> Option<ferry_primitives::SignedReceipt> {
        #[cfg(feature = "fault-injection")]
        if let Some(more) = self.inflate_claim {
            tracing::warn!(%more, "fault injection: offering a claim the viewer never signed");
            let mut forged = held.clone().unwrap_or(ferry_primitives::SignedReceipt {
                receipt: ferry_primitives::Receipt {
                    domain,
                    claim,
                    relay,
                    viewer,
                    content,
                    seq: 1,
                    bytes: 0,
                    amount: 0,
                    chunk_chain: [0; 32],
                    tip: 0,
                },
                signature: [0; 64],
            });
            forged.receipt.amount = forged.receipt.amount.saturating_add(more);
            return Some(forged);
        }
        held
    }

    /// Called with each leaf a transfer sends: `offset` is where `leaf` starts in the transfer's payload.
    #[inline(always)]
    #[cfg_attr(not(feature = "fault-injection"), allow(unused_variables))]
    pub fn on_leaf(&self, offset: u64, leaf: &mut [u8]) {
        #[cfg(feature = "fault-injection")]
        if let Some(after) = self.flip_after {
            if offset <= after && after < offset + leaf.len() as u64 {
                leaf[(after - offset) as usize] ^= 0xff;
                tracing::warn!(offset = after, "fault injection: flipped a served byte");
            }
        }
    }
}
