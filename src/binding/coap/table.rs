//! A bounded map whose entries live for a fixed time: two generations of `HashMap`s.
//!
//! In: entries with a lifetime and a capacity. Out: lookups that see an entry for at least its
//! lifetime unless the capacity forced it out earlier, never after it. New entries go into the
//! current generation; when it is `lifetime` old or holds half the capacity, it becomes the
//! previous one and the previous one is dropped whole. So inserting is a hash insert, with no
//! per-entry eviction bookkeeping, and a flood can only push out the oldest entries.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Table<K, V> {
    inner: Mutex<Generations<K, V>>,
    lifetime: Duration,
    half_capacity: usize,
}

struct Generations<K, V> {
    current: HashMap<K, (Instant, V)>,
    previous: HashMap<K, (Instant, V)>,
    started: Instant,
}

impl<K: Hash + Eq, V: Clone> Table<K, V> {
    pub fn new(capacity: u64, lifetime: Duration) -> Self {
        Table {
            inner: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
                started: Instant::now(),
            }),
            lifetime,
            half_capacity: usize::try_from(capacity / 2).unwrap_or(usize::MAX).max(1),
        }
    }

    pub fn insert(&self, key: K, value: V) {
        let now = Instant::now();
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        self.rotate(&mut g, now);
        g.previous.remove(&key);
        g.current.insert(key, (now, value));
    }

    /// Inserts `value` unless a live entry is there, atomically: `None` if it was inserted,
    /// else the entry found. (Two readers of one socket must not both take a datagram and its
    /// duplicate for new.)
    pub fn claim(&self, key: K, value: V) -> Option<V> {
        let now = Instant::now();
        let Ok(mut g) = self.inner.lock() else {
            return Some(value); // poisoned: refuse rather than process twice
        };
        let found = g.current.get(&key).or_else(|| g.previous.get(&key));
        if let Some((at, existing)) = found {
            if now.duration_since(*at) < self.lifetime {
                return Some(existing.clone());
            }
        }
        self.rotate(&mut g, now);
        g.previous.remove(&key);
        g.current.insert(key, (now, value));
        None
    }

    fn rotate(&self, g: &mut Generations<K, V>, now: Instant) {
        if now.duration_since(g.started) >= self.lifetime || g.current.len() >= self.half_capacity {
            // The old previous generation's allocation becomes the new current one: no
            // regrowing after every rotation.
            let Generations {
                current, previous, ..
            } = &mut *g;
            std::mem::swap(current, previous);
            current.clear();
            g.started = now;
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let g = self.inner.lock().ok()?;
        let (at, value) = g.current.get(key).or_else(|| g.previous.get(key))?;
        (at.elapsed() < self.lifetime).then(|| value.clone())
    }

    pub fn remove(&self, key: &K) -> Option<V> {
        let mut g = self.inner.lock().ok()?;
        let (at, value) = match g.current.remove(key) {
            Some(entry) => entry,
            None => g.previous.remove(key)?,
        };
        (at.elapsed() < self.lifetime).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_their_lifetime_and_no_longer() {
        let table = Table::new(100, Duration::from_millis(50));
        table.insert(1, "a");
        assert_eq!(table.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(table.get(&1), None, "expired");
        table.insert(2, "b");
        assert_eq!(table.remove(&2), Some("b"));
        assert_eq!(table.get(&2), None);
    }

    #[test]
    fn claim_takes_a_key_once() {
        let table = Table::new(100, Duration::from_secs(60));
        assert_eq!(table.claim(1, "first"), None);
        assert_eq!(table.claim(1, "second"), Some("first"));
        assert_eq!(table.get(&1), Some("first"));
    }

    #[test]
    fn a_full_table_drops_the_oldest_generation_only() {
        let table = Table::new(100, Duration::from_secs(60));
        for k in 0..1000u32 {
            table.insert(k, k);
        }
        assert_eq!(table.get(&999), Some(999), "the newest are kept");
        assert_eq!(table.get(&0), None, "the oldest are gone");
        let kept = (0..1000u32).filter(|k| table.get(k).is_some()).count();
        assert!((50..=100).contains(&kept), "{kept}");
    }
}
