//! Basic authentication (`basic_auth_users` of `--web.config.file`): bcrypt hashes, as
//! the exporter-toolkit has them.
//!
//! bcrypt is slow on purpose (some 50 ms at cost 10), far slower than a scrape. A user
//! and password that passed once are remembered (as a SHA-256 digest, never in clear),
//! so Prometheus' scrapes cost one hash lookup and never wait behind anything.
//!
//! Credentials not yet seen are checked on the blocking pool, one at a time, and a
//! failed check holds its turn for at least [`MIN_FAILED_CHECK`], so a flood of wrong
//! passwords costs at most ten bcrypt runs a second (half a core), never the async
//! worker. Each client address has at most one check waiting or running, and at most
//! [`MAX_WAITING`] wait in all; a request beyond either is answered 429 at once rather
//! than queued. A flood from one address therefore puts one check ahead of Prometheus'
//! first scrape after a restart, not the whole flood. An unknown user costs the same
//! bcrypt run as a known one, so timing does not tell which user names exist.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::debug;

/// Checked against when the user is unknown: a valid cost-10 hash of a random password.
const DECOY: &str = "$2y$10$S8uoU9K2SiPWjQTDZTORpO4U6/h9c530fsJgxPasViH9h.Z61U60S";
/// Remembered passes at most; past that the memory starts over.
const REMEMBERED: usize = 256;
/// Checks of credentials not seen before that may wait (or run) at once, one per
/// client address.
pub const MAX_WAITING: usize = 16;
/// The least time a failed check holds its turn.
pub const MIN_FAILED_CHECK: Duration = Duration::from_millis(100);

/// What a request's credentials earn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Too many checks wait already: try again shortly.
    Busy,
}

pub struct BasicAuth {
    users: HashMap<String, String>,
    passed: Mutex<HashSet<[u8; 32]>>,
    checks: Semaphore,
    /// The client addresses with a check waiting or running.
    waiting: Mutex<HashSet<IpAddr>>,
}

/// Holds a client address's place among the waiting checks for as long as it lives.
struct Waiting<'a>(&'a Mutex<HashSet<IpAddr>>, IpAddr);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut w = match self.0.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        w.remove(&self.1);
    }
}

impl BasicAuth {
    pub fn new(users: Vec<(String, String)>) -> BasicAuth {
        BasicAuth {
            users: users.into_iter().collect(),
            passed: Mutex::new(HashSet::new()),
            checks: Semaphore::new(1),
            waiting: Mutex::new(HashSet::new()),
        }
    }

    /// Whether an `Authorization` header names a user and that user's password.
    #[cfg(test)]
    pub async fn allows(&self, header: Option<&HeaderValue>) -> bool {
        self.check(header, IpAddr::from([127, 0, 0, 1])).await == Verdict::Allowed
    }

    /// What an `Authorization` header from `peer` earns: allowed, denied, or busy when
    /// that address already has a check waiting or too many wait in all.
    pub async fn check(&self, header: Option<&HeaderValue>, peer: IpAddr) -> Verdict {
        let Some((user, password)) = header.and_then(credentials) else {
            return Verdict::Denied;
        };
        let digest: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if self.remembered(&digest) {
            return Verdict::Allowed;
        }
        {
            let mut w = match self.waiting.lock() {
                Ok(w) => w,
                Err(p) => p.into_inner(),
            };
            if w.len() >= MAX_WAITING || !w.insert(peer) {
                return Verdict::Busy;
            }
        }
        let _waiting = Waiting(&self.waiting, peer);
        let hash = self.users.get(&user).cloned();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DECOY.to_owned());
        let Ok(_permit) = self.checks.acquire().await else {
            return Verdict::Denied;
        };
        let started = Instant::now();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false)
            && known;
        if ok {
            let mut passed = match self.passed.lock() {
                Ok(p) => p,
                Err(p) => p.into_inner(),
            };
            if passed.len() >= REMEMBERED {
                passed.clear();
            }
            passed.insert(digest);
            Verdict::Allowed
        } else {
            debug!(%user, known, "basic authentication failed");
            // The turn is held (with the permit) for the rest of the minimum.
            tokio::time::sleep_until((started + MIN_FAILED_CHECK).into()).await;
            Verdict::Denied
        }
    }

    fn remembered(&self, digest: &[u8; 32]) -> bool {
        match self.passed.lock() {
            Ok(p) => p.contains(digest),
            Err(p) => p.into_inner().contains(digest),
        }
    }
}

/// User and password of a `Basic` authorization header.
pub fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_password: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(user_password);
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_right_password_passes_and_is_remembered() {
        // Cost 4, the lowest, keeps the test fast; the check is the same.
        let hash = bcrypt::hash("s3cret:with colon", 4).unwrap();
        let auth = BasicAuth::new(vec![("prometheus".to_owned(), hash)]);
        assert!(
            auth.allows(Some(&header("prometheus:s3cret:with colon")))
                .await
        );
        assert_eq!(auth.passed.lock().unwrap().len(), 1);
        assert!(
            auth.allows(Some(&header("prometheus:s3cret:with colon")))
                .await
        );
        assert!(!auth.allows(Some(&header("prometheus:wrong"))).await);
        assert!(!auth.allows(Some(&header("nobody:s3cret:with colon"))).await);
        assert!(!auth.allows(None).await);
        assert!(
            !auth
                .allows(Some(&HeaderValue::from_static("Bearer abc")))
                .await
        );
        assert!(
            !auth
                .allows(Some(&HeaderValue::from_static("Basic !!!")))
                .await
        );
        // Failures are not remembered.
        assert_eq!(auth.passed.lock().unwrap().len(), 1);
    }

    #[test]
    fn decoy_is_a_valid_hash() {
        assert!(bcrypt::verify("anything", DECOY).is_ok());
    }
}
