//! The validator the network asks before it stores a record a peer put with Kademlia
//! `PUT_VALUE`: context records must pass the same check as a `store` RPC, and hash to their key.

use bzzz_protocol::context::{DHT_KEY_PREFIX, parse_dht_key};

use crate::network::{RecordValidator, Verdict};

use super::holder::validate_record;
use super::metrics::{ContextMetrics, RecordSource};

/// Judges context records (keys under `/bzzz/ctx/1/`); other keys are ordinary DHT records.
#[derive(Debug, Clone)]
pub struct ContextRecordValidator {
    max_record_bytes: usize,
    metrics: ContextMetrics,
}

impl ContextRecordValidator {
    /// A validator for records up to `max_record_bytes`, counting refusals in `metrics`.
    pub fn new(max_record_bytes: usize, metrics: ContextMetrics) -> Self {
        Self {
            max_record_bytes,
            metrics,
        }
    }

    fn check(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let key = parse_dht_key(key).ok_or_else(|| "malformed context record key".to_string())?;
        let verified = validate_record(value, self.max_record_bytes)?;
        if verified.record_key() == key {
            Ok(())
        } else {
            Err("record does not hash to its key".into())
        }
    }
}

impl RecordValidator for ContextRecordValidator {
    fn validate(&self, key: &[u8], value: &[u8]) -> Verdict {
        if !key.starts_with(DHT_KEY_PREFIX) {
            return Verdict::Ordinary;
        }
        match self.check(key, value) {
            Ok(()) => Verdict::Keep,
            Err(reason) => {
                self.metrics.record_rejected(RecordSource::DhtPut);
                Verdict::Reject(reason)
            }
        }
    }
}
