//! Rate limits on what peers ask of a relay. Peer ids and accounts cost nothing to make, so a limit per peer alone
//! is easy to dodge: viewer accounts the relay has never seen are also limited per host (IP address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use libp2p::PeerId;

/// Tokens refill at a steady rate up to a burst; each admitted request takes one.
#[derive(Default)]
pub struct TokenBucket {
    tokens: f64,
    refilled: Option<Instant>,
}

impl TokenBucket {
    /// Takes a token if there is one. A new bucket starts full.
    pub fn take(&mut self, per_second: f64, burst: f64) -> bool {
        let now = Instant::now();
        self.tokens = match self.refilled {
            Some(t) => (self.tokens + now.duration_since(t).as_secs_f64() * per_second).min(burst),
            None => burst,
        };
        self.refilled = Some(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    fn full(&self, per_second: f64, burst: f64) -> bool {
        self.refilled.is_none_or(|t| self.tokens + t.elapsed().as_secs_f64() * per_second >= burst)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Peer(PeerId),
    Host(IpAddr),
}

/// Sessions for viewer accounts the relay has not seen yet: at most `per_minute` a minute (and as a burst) from
/// one peer, and as many from one host.
pub struct Newcomers {
    per_minute: u32,
    buckets: Mutex<HashMap<Source, TokenBucket>>,
}

/// Buckets kept before full ones (which hold no information) are dropped.
const MAX_BUCKETS: usize = 16_384;

impl Newcomers {
    pub fn new(per_minute: u32) -> Newcomers {
        Newcomers { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// Whether one more new account may open a session from `peer` at `host`; takes a token from both.
    pub fn admit(&self, peer: PeerId, host: Option<IpAddr>) -> Result<(), &'static str> {
        let burst = f64::from(self.per_minute);
        let rate = burst / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| !b.full(rate, burst));
        }
        if !buckets.entry(Source::Peer(peer)).or_default().take(rate, burst) {
            return Err("too many new accounts from this peer; try again in a minute");
        }
        if let Some(host) = host {
            if !buckets.entry(Source::Host(host)).or_default().take(rate, burst) {
                return Err("too many new accounts from this address; try again in a minute");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accounts_are_limited_per_peer_and_per_host() {
        let n = Newcomers::new(2);
        let host = Some(IpAddr::from([192, 0, 2, 1]));
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(n.admit(a, host).is_ok());
        assert!(n.admit(a, host).is_ok());
        assert_eq!(n.admit(a, host), Err("too many new accounts from this peer; try again in a minute"));
        // A fresh peer id on the same host is still limited by the host.
        assert_eq!(n.admit(b, host), Err("too many new accounts from this address; try again in a minute"));
        // Elsewhere, the fresh peer is admitted.
        assert!(n.admit(b, Some(IpAddr::from([192, 0, 2, 2]))).is_ok());
    }

    #[test]
    fn a_bucket_refills_at_its_rate() {
        let mut b = TokenBucket::default();
        assert!(b.take(1000.0, 1.0));
        assert!(!b.take(1000.0, 1.0));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(b.take(1000.0, 1.0));
    }
}
