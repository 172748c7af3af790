//! Exponential backoff with jitter for dial retries.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Shortest delay [`Backoff::next_delay`] ever returns, so retries never spin.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// Exponential backoff with jitter for dial retries.
///
/// The nominal delay of retry `n` (counting from 0) is
/// `initial * multiplier^n`, capped at `max`; the delay actually returned is
/// the nominal one scaled by a random factor in `[1 - jitter, 1 + jitter]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Nominal delay before the first retry (default 250 ms).
    pub initial: Duration,
    /// Largest nominal delay (default 30 s); with jitter a delay can reach `max * (1 + jitter)`.
    pub max: Duration,
    /// Growth factor between consecutive nominal delays (default 2.0; values below 1 or NaN act as 1).
    pub multiplier: f64,
    /// Relative jitter, e.g. 0.2 = ±20 % (default 0.2; clamped to `0.0..=1.0`, NaN acts as 0).
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

/// Stateful backoff sequence built from a [`BackoffConfig`].
///
/// Delays grow geometrically up to `max`, each within ±`jitter` of its
/// nominal value, never above `max * (1 + jitter)` and never zero (at least
/// 1 ms). Any configuration is accepted; nonsensical values are sanitised
/// rather than panicking.
#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    attempts: u32,
    rng: StdRng,
}

impl Backoff {
    /// Creates a backoff whose jitter comes from OS entropy.
    pub fn new(cfg: BackoffConfig) -> Self {
        Backoff {
            cfg,
            attempts: 0,
            rng: StdRng::from_entropy(),
        }
    }

    /// Creates a backoff with a deterministic jitter sequence (for tests and reproducible runs).
    pub fn with_rng_seed(cfg: BackoffConfig, seed: u64) -> Self {
        Backoff {
            cfg,
            attempts: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Returns the delay to wait before the next retry and advances the sequence.
    pub fn next_delay(&mut self) -> Duration {
        let jitter = self.jitter();
        let nominal = self.nominal_secs();
        let offset = if jitter > 0.0 {
            self.rng.gen_range(-jitter..=jitter)
        } else {
            0.0
        };
        let ceiling = self.cfg.max.as_secs_f64() * (1.0 + jitter);
        let secs = (nominal * (1.0 + offset)).min(ceiling);
        self.attempts = self.attempts.saturating_add(1);
        Duration::try_from_secs_f64(secs).unwrap_or(self.cfg.max).max(MIN_DELAY)
    }

    /// Starts the sequence over from `initial` (call after a successful dial).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    /// How many delays [`next_delay`](Self::next_delay) has handed out since creation or the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Jitter clamped to `0.0..=1.0` (NaN becomes 0).
    fn jitter(&self) -> f64 {
        let j = self.cfg.jitter;
        if j.is_nan() || j <= 0.0 { 0.0 } else { j.min(1.0) }
    }

    /// Nominal delay of the current attempt in seconds, capped at `max`.
    fn nominal_secs(&self) -> f64 {
        let max = self.cfg.max.as_secs_f64();
        let m = self.cfg.multiplier;
        let multiplier = if m.is_nan() || m < 1.0 { 1.0 } else { m };
        let exp = i32::try_from(self.attempts).unwrap_or(i32::MAX);
        let nominal = self.cfg.initial.as_secs_f64() * multiplier.powi(exp);
        if nominal.is_finite() { nominal.min(max) } else { max }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        }
    }

    /// Defaults are 250 ms, 30 s, ×2, ±20 %.
    #[test]
    fn default_config_values() {
        let got = BackoffConfig::default();
        let want = BackoffConfig {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        };
        assert_eq!(got, want, "expected {want:?}, got {got:?}");
    }

    /// Without jitter the delays double from 250 ms and stay at the 30 s cap.
    #[test]
    fn backoff_grows_geometrically_and_is_capped() {
        let mut b = Backoff::new(no_jitter());
        let got: Vec<u64> = (0..12).map(|_| b.next_delay().as_millis() as u64).collect();
        let want = vec![
            250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000,
        ];
        assert_eq!(got, want, "expected delays {want:?} ms, got {got:?}");
        assert_eq!(b.attempts(), 12, "expected 12 attempts, got {}", b.attempts());
    }

    /// With ±20 % jitter every delay is within 20 % of its nominal value,
    /// never above max * 1.2 and never zero, across many seeds.
    #[test]
    fn backoff_jitter_stays_within_bounds() {
        let cfg = BackoffConfig::default();
        let eps = 1e-6;
        for seed in 0..200 {
            let mut b = Backoff::with_rng_seed(cfg.clone(), seed);
            let mut nominal = cfg.initial.as_secs_f64();
            for n in 0..20 {
                let got = b.next_delay().as_secs_f64();
                let lo = nominal * 0.8 - eps;
                let hi = nominal * 1.2 + eps;
                assert!(
                    (lo..=hi).contains(&got),
                    "seed {seed} attempt {n}: expected delay in [{lo}, {hi}] s, got {got} s"
                );
                assert!(
                    got <= 36.0 + eps && got > 0.0,
                    "seed {seed} attempt {n}: expected 0 < delay <= 36 s, got {got} s"
                );
                nominal = (nominal * 2.0).min(30.0);
            }
        }
    }

    /// Jitter actually varies the delays (it is not stuck at the nominal value).
    #[test]
    fn backoff_jitter_varies() {
        let mut b = Backoff::with_rng_seed(BackoffConfig::default(), 7);
        let firsts: Vec<Duration> = (0..50)
            .map(|_| {
                b.reset();
                b.next_delay()
            })
            .collect();
        let distinct = firsts.iter().filter(|d| **d != Duration::from_millis(250)).count();
        assert!(
            distinct > 40,
            "expected most jittered first delays to differ from 250 ms, got {distinct} of 50"
        );
    }

    /// The same seed gives the same sequence.
    #[test]
    fn backoff_seed_is_deterministic() {
        let mut a = Backoff::with_rng_seed(BackoffConfig::default(), 42);
        let mut b = Backoff::with_rng_seed(BackoffConfig::default(), 42);
        let sa: Vec<Duration> = (0..10).map(|_| a.next_delay()).collect();
        let sb: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert_eq!(sa, sb, "expected equal sequences, got {sa:?} vs {sb:?}");
    }

    /// reset() brings the next delay back to the initial value and zeroes attempts().
    #[test]
    fn backoff_reset_starts_over() {
        let mut b = Backoff::new(no_jitter());
        for _ in 0..6 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(
            b.attempts(),
            0,
            "attempts after reset: expected 0, got {}",
            b.attempts()
        );
        let got = b.next_delay();
        assert_eq!(
            got,
            Duration::from_millis(250),
            "first delay after reset: expected 250ms, got {got:?}"
        );
    }

    /// Degenerate configurations never panic and never yield a zero delay.
    #[test]
    fn backoff_survives_degenerate_configs() {
        let configs = [
            BackoffConfig {
                initial: Duration::ZERO,
                max: Duration::ZERO,
                multiplier: 0.0,
                jitter: 0.0,
            },
            BackoffConfig {
                initial: Duration::MAX,
                max: Duration::MAX,
                multiplier: f64::INFINITY,
                jitter: 5.0,
            },
            BackoffConfig {
                initial: Duration::from_secs(1),
                max: Duration::from_millis(10),
                multiplier: f64::NAN,
                jitter: f64::NAN,
            },
            BackoffConfig {
                initial: Duration::from_nanos(1),
                max: Duration::from_secs(1),
                multiplier: 1e300,
                jitter: -1.0,
            },
        ];
        for cfg in configs {
            let mut b = Backoff::with_rng_seed(cfg.clone(), 1);
            for n in 0..100 {
                let d = b.next_delay();
                assert!(
                    d >= MIN_DELAY,
                    "config {cfg:?} attempt {n}: expected a non-zero delay, got {d:?}"
                );
            }
        }
        // initial above max is capped at max.
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::from_secs(100),
            max: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.0,
        });
        let got = b.next_delay();
        assert_eq!(got, Duration::from_secs(5), "expected the 5s cap, got {got:?}");
    }
}
