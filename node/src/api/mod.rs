//! What a node serves over HTTP: the viewer's HLS gateway and the relay's Prometheus metrics (counted in `crate::metrics`).

pub mod gateway;
pub mod metrics;
