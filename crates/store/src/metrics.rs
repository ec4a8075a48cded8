//! What the store counts, as Prometheus handles: the service registers them with its others and
//! exposes them (`access_tokens::metrics`); the store only records.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Waits for a database connection, in seconds, up to the acquire timeout (2 s).
pub const ACQUIRE_BUCKETS: [f64; 10] =
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0];
/// Creations written by one statement: 1 to the most a group holds (64).
pub const GROUP_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// What the store counts: waits for a connection, how many are waiting now, the creations waiting
/// for the writer, and the size of each group of creations.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    pub acquire_seconds: Histogram,
    /// Requests waiting for a connection of the pool at this moment.
    pub waiting: Gauge,
    /// Creations queued for the writer at this moment, not yet in a statement.
    pub queued: Gauge,
    pub group_sizes: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            acquire_seconds: Histogram::new(ACQUIRE_BUCKETS),
            waiting: Gauge::default(),
            queued: Gauge::default(),
            group_sizes: Histogram::new(GROUP_BUCKETS),
        }
    }
}
