//! The relay's Prometheus metrics: counted where the work happens (relay, money), served by `api::metrics`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Every metric the relay exports. Cheap to clone: the handles share their values.
#[derive(Clone)]
pub struct Metrics {
    pub bytes_served: Counter,
    pub chunks_served: Counter,
    pub chunk_streams_active: Gauge,
    pub sessions_active: Gauge,
    pub receipts_accepted: Counter,
    pub receipts_rejected: Family<ReasonLabel, Counter>,
    pub streams_refused: Family<ReasonLabel, Counter>,
    pub receipt_ack_seconds: Histogram,
    pub ledger_commit_seconds: Histogram,
    pub upstream_fetches: Counter,
    pub cache_bytes: Gauge,
    pub blob_disk_reads: Counter,
    pub receipts_settled: Counter,
    pub receipts_refused_on_chain: Counter,
    pub settlement_errors: Family<ReasonLabel, Counter>,
    pub chain_reachable: Gauge,
    pub last_settled_block: Gauge,
    pub settlement_batches: Counter,
    /// What the ledger says is owed and paid, as `ferry earnings` reports it (floats: Prometheus has no u128).
    pub amount_pending: Gauge<f64, AtomicU64>,
    pub amount_in_flight: Gauge<f64, AtomicU64>,
    pub amount_settled: Gauge<f64, AtomicU64>,
    pub amount_operator_paid: Gauge<f64, AtomicU64>,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("ferry");
        let m = Metrics {
            bytes_served: Counter::default(),
            chunks_served: Counter::default(),
            chunk_streams_active: Gauge::default(),
            sessions_active: Gauge::default(),
            receipts_accepted: Counter::default(),
            receipts_rejected: Family::default(),
            streams_refused: Family::default(),
            receipt_ack_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            ledger_commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            upstream_fetches: Counter::default(),
            cache_bytes: Gauge::default(),
            blob_disk_reads: Counter::default(),
            receipts_settled: Counter::default(),
            receipts_refused_on_chain: Counter::default(),
            settlement_errors: Family::default(),
            chain_reachable: Gauge::default(),
            last_settled_block: Gauge::default(),
            settlement_batches: Counter::default(),
            amount_pending: Gauge::default(),
            amount_in_flight: Gauge::default(),
            amount_settled: Gauge::default(),
            amount_operator_paid: Gauge::default(),
            registry: Arc::new(Registry::default()),
        };
        r.register("bytes_served", "Verified video bytes sent to viewers", m.bytes_served.clone());
        r.register(
            "chunks_served",
            "Receipt chunks (256 KiB, or a transfer's last part) sent",
            m.chunks_served.clone(),
        );
        r.register("chunk_streams_active", "Chunk transfers in progress", m.chunk_streams_active.clone());
        r.register("sessions_active", "Open viewer sessions", m.sessions_active.clone());
        r.register("receipts_accepted", "Receipts verified and durably committed", m.receipts_accepted.clone());
        r.register("receipts_rejected", "Receipts refused, by reason", m.receipts_rejected.clone());
        r.register("streams_refused", "Streams refused by limits or bad input, by reason", m.streams_refused.clone());
        r.register(
            "receipt_ack_seconds",
            "Time from receipt arrival to acknowledgement",
            m.receipt_ack_seconds.clone(),
        );
        r.register(
            "ledger_commit_seconds",
            "Time a receipt waited for the ledger's durable commit",
            m.ledger_commit_seconds.clone(),
        );
        r.register("upstream_fetches", "Blobs fetched from other relays into the cache", m.upstream_fetches.clone());
        r.register("cache_bytes", "Bytes of cached (unpinned) video", m.cache_bytes.clone());
        r.register(
            "blob_disk_reads",
            "Blobs read from disk and checked against their hash (a blob in memory needs no read)",
            m.blob_disk_reads.clone(),
        );
        r.register("receipts_settled", "Receipts settled in finalized blocks", m.receipts_settled.clone());
        r.register(
            "receipts_refused_on_chain",
            "Receipts the chain refused (see the log for the error)",
            m.receipts_refused_on_chain.clone(),
        );
        r.register("settlement_errors", "Failed settlement rounds, by reason", m.settlement_errors.clone());
        r.register("chain_reachable", "1 when the last chain call succeeded", m.chain_reachable.clone());
        r.register("last_settled_block", "Block number of the latest settlement", m.last_settled_block.clone());
        r.register("settlement_batches", "Settle transactions in finalized blocks", m.settlement_batches.clone());
        r.register("amount_pending", "Owed by receipts not yet submitted", m.amount_pending.clone());
        r.register("amount_in_flight", "Owed by receipts waiting for a finalized block", m.amount_in_flight.clone());
        r.register("amount_settled", "Paid by viewers' lanes for this relay's service", m.amount_settled.clone());
        r.register("amount_operator_paid", "The operator's part of what was settled", m.amount_operator_paid.clone());
        Metrics { registry: Arc::new(r), ..m }
    }

    pub fn reject(&self, family: &Family<ReasonLabel, Counter>, reason: &str) {
        family.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The operators' dashboard (`deploy/grafana/ferry-relay.json`) must keep up with renamed or removed metrics.
    #[test]
    fn the_grafana_dashboard_names_only_metrics_the_relay_exports() {
        let dashboard = include_str!("../../deploy/grafana/ferry-relay.json");
        let _: serde_json::Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
        let m = Metrics::new();
        // A family is rendered only once it has a label value.
        for family in [&m.receipts_rejected, &m.streams_refused, &m.settlement_errors] {
            m.reject(family, "any");
        }
        let rendered = m.render();
        let exported: HashSet<&str> =
            rendered.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        let named: Vec<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("ferry_"))
            .collect();
        for word in &named {
            let base =
                ["_total", "_bucket", "_sum", "_count"].iter().find_map(|s| word.strip_suffix(s)).unwrap_or(word);
            assert!(exported.contains(base), "the dashboard names {word}; the relay exports {exported:?}");
        }
        assert!(named.len() >= 20, "the dashboard names {} metrics", named.len());
    }
}
