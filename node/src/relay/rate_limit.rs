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
    /// An IPv4 address or an IPv6 /64 (one host's usual allocation); `None` for peers whose address is not known,
    /// which share one bucket.
    Host(Option<IpAddr>),
}

fn host_key(ip: Option<IpAddr>) -> Source {
    Source::Host(ip.map(|ip| match ip {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }))
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
            if buckets.len() >= MAX_BUCKETS {
                // Memory stays bounded; the limits start over.
                buckets.clear();
            }
        }
        // The host first, so fresh peer ids from a host that is over its limit add no buckets.
        if !buckets.entry(host_key(host)).or_default().take(rate, burst) {
            return Err("too many new accounts from this address; try again in a minute");
        }
        if !buckets.entry(Source::Peer(peer)).or_default().take(rate, burst) {
            return Err("too many new accounts from this peer; try again in a minute");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "too many new accounts from this peer; try again in a minute";
    const HOST: &str = "too many new accounts from this address; try again in a minute";

    #[test]
    fn new_accounts_are_limited_per_peer_and_per_host() {
        let n = Newcomers::new(2);
        let host = |last: u8| Some(IpAddr::from([192, 0, 2, last]));
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(n.admit(a, host(1)).is_ok());
        assert!(n.admit(a, host(1)).is_ok());
        // A fresh peer id on the same host is limited by the host.
        assert_eq!(n.admit(b, host(1)), Err(HOST));
        // A peer moving to another host is limited by its peer id.
        assert_eq!(n.admit(a, host(2)), Err(PEER));
        // Elsewhere, a fresh peer is admitted.
        assert_eq!(n.admit(b, host(4)), Ok(()));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_host_and_unknown_addresses_share_a_bucket() {
        let n = Newcomers::new(1);
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        assert_eq!(n.admit(PeerId::random(), v6(1)), Ok(()));
        assert_eq!(n.admit(PeerId::random(), v6(2)), Err(HOST));
        assert_eq!(n.admit(PeerId::random(), None), Ok(()));
        assert_eq!(n.admit(PeerId::random(), None), Err(HOST));
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
