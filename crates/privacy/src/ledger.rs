//! A privacy budget kept in a JSON file across fits and releases: diffprivlib's
//! `BudgetAccountant`, whose spends compose sequentially (epsilons add up) or, with a `slack`
//! of delta, by the advanced composition theorem (Kairouz, Oh & Viswanath 2017), whichever
//! total is smaller.
//!
//! A spend that would take the total past the budget is refused before anything is fitted or
//! released; the file is rewritten whole (a temporary file renamed over it) after each spend.
//! A process that spends holds the ledger ([`Ledger::hold`]: an exclusive lock on `FILE.lock`)
//! from its check to its record, so processes spending from one budget take turns.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// One recorded spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// Its epsilon.
    pub epsilon: f64,
    /// Its delta.
    pub delta: f64,
    /// What spent it, e.g. `fit dp-logistic-regression on train.csv`.
    pub what: String,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
}

/// A privacy budget and what has been spent of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// The budget's epsilon.
    pub epsilon: f64,
    /// The budget's delta.
    pub delta: f64,
    /// The delta set aside for advanced composition; 0 composes sequentially.
    pub slack: f64,
    /// The spends, oldest first.
    pub spent: Vec<Spend>,
}

impl Ledger {
    /// A new, unspent budget.
    pub fn new(epsilon: f64, delta: f64, slack: f64) -> Result<Ledger> {
        if !(epsilon > 0.0 && epsilon.is_finite()) {
            return Err(Error::Request(format!(
                "a budget's epsilon must be a positive number, not {epsilon}"
            )));
        }
        if !(0.0..1.0).contains(&delta) {
            return Err(Error::Request(format!(
                "a budget's delta must be at least 0 and below 1, not {delta}"
            )));
        }
        if !(0.0..=delta).contains(&slack) {
            return Err(Error::Request(format!(
                "slack must be between 0 and the budget's delta ({delta}), not {slack}"
            )));
        }
        Ok(Ledger {
            epsilon,
            delta,
            slack,
            spent: Vec::new(),
        })
    }

    /// Reads the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Ledger(format!(
                "cannot read the budget ledger {}: {e}; create it with skiff dp budget {} \
                 --epsilon E",
                path.display(),
                path.display()
            ))
        })?;
        let ledger: Ledger = serde_json::from_str(&text).map_err(|e| {
            Error::Ledger(format!(
                "{} is not a budget ledger: {e}; create one with skiff dp budget FILE --epsilon E",
                path.display()
            ))
        })?;
        Ledger::new(ledger.epsilon, ledger.delta, ledger.slack)?;
        Ok(ledger)
    }

    /// Holds the ledger at `path` for spending: waits (calling `on_wait` first) while another
    /// process holds it, then reads it. Others wait until the [`Held`] ledger is dropped.
    pub fn hold(path: &Path, on_wait: impl FnOnce()) -> Result<Held> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::Ledger(format!("cannot lock {}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait();
                lock.lock().map_err(|e| {
                    Error::Ledger(format!("cannot lock {}: {e}", lock_path.display()))
                })?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::Ledger(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )));
            }
        }
        Ok(Held {
            ledger: Ledger::open(path)?,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Writes the ledger to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("a ledger serialises");
        text.push('\n');
        skiff_data::write_atomic(path, text.as_bytes())
            .map_err(|e| Error::Ledger(format!("cannot write {}: {e}", path.display())))
    }

    /// The total `(epsilon, delta)` of `spends` under this ledger's slack: diffprivlib's
    /// `BudgetAccountant.total`.
    fn total_of(&self, spends: &[(f64, f64)]) -> (f64, f64) {
        let naive: f64 = spends.iter().map(|s| s.0).sum();
        let squares: f64 = spends.iter().map(|s| s.0 * s.0).sum();
        let shrunk: f64 = spends
            .iter()
            .map(|&(e, _)| (1.0 - (-e).exp()) * e / (1.0 + (-e).exp()))
            .sum();
        // 1 - (1 - slack)·Π(1 - delta_i), summed stably from the smallest.
        let mut deltas: Vec<f64> = spends.iter().map(|s| s.1).collect();
        deltas.push(self.slack);
        deltas.sort_by(f64::total_cmp);
        let delta = deltas.iter().fold(0.0, |acc, d| acc + d - acc * d);
        if self.slack == 0.0 {
            return (naive, delta);
        }
        let drv = shrunk + (2.0 * squares * (1.0 / self.slack).ln()).sqrt();
        let kov = shrunk
            + (2.0 * squares * (std::f64::consts::E + squares.sqrt() / self.slack).ln()).sqrt();
        (naive.min(drv).min(kov), delta)
    }

    fn spends(&self) -> Vec<(f64, f64)> {
        self.spent.iter().map(|s| (s.epsilon, s.delta)).collect()
    }

    /// What has been spent so far, composed: `(epsilon, delta)`.
    pub fn total(&self) -> (f64, f64) {
        self.total_of(&self.spends())
    }

    /// The largest epsilon one more spend of delta 0 may take.
    pub fn remaining(&self) -> f64 {
        let spends = self.spends();
        let with = |e: f64| {
            let mut all = spends.clone();
            all.push((e, 0.0));
            self.total_of(&all).0
        };
        let (mut lower, mut upper) = (0.0, self.epsilon);
        // Bisection to the last bit of a double.
        for _ in 0..200 {
            let middle = (lower + upper) / 2.0;
            if middle <= lower || middle >= upper {
                break;
            }
            if with(middle) <= self.epsilon {
                lower = middle;
            } else {
                upper = middle;
            }
        }
        if with(lower) <= self.epsilon {
            lower
        } else {
            0.0
        }
    }

    /// Whether `epsilon` and `delta` more fit the budget; refused with what is left if not.
    pub fn check(&self, epsilon: f64, delta: f64) -> Result<()> {
        if !(epsilon >= 0.0 && epsilon.is_finite() && (0.0..=1.0).contains(&delta)) {
            return Err(Error::OverBudget(format!(
                "a spend of epsilon {epsilon} cannot be recorded: a budget ledger takes finite \
                 spends"
            )));
        }
        let mut spends = self.spends();
        spends.push((epsilon, delta));
        let (total_epsilon, total_delta) = self.total_of(&spends);
        if total_epsilon <= self.epsilon && total_delta <= self.delta {
            return Ok(());
        }
        let (spent, _) = self.total();
        Err(Error::OverBudget(format!(
            "a spend of epsilon {epsilon} would exceed the budget: {spent} of {} spent, at most \
             {} left; lower epsilon or start a new budget",
            self.epsilon,
            self.remaining()
        )))
    }

    /// Records a spend after checking it.
    pub fn spend(&mut self, epsilon: f64, delta: f64, what: &str) -> Result<()> {
        self.check(epsilon, delta)?;
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.spent.push(Spend {
            epsilon,
            delta,
            what: what.to_string(),
            at,
        });
        Ok(())
    }
}

/// A ledger held for spending (see [`Ledger::hold`]).
#[derive(Debug)]
pub struct Held {
    ledger: Ledger,
    path: PathBuf,
    _lock: File,
}

impl Held {
    /// The ledger as it was read.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Records a spend (after checking it) and writes the ledger back.
    pub fn spend(&mut self, epsilon: f64, delta: f64, what: &str) -> Result<()> {
        self.ledger.spend(epsilon, delta, what)?;
        self.ledger.save(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_spends_add_up_and_the_last_one_over_is_refused() {
        let mut ledger = Ledger::new(1.0, 0.0, 0.0).unwrap();
        ledger.spend(0.5, 0.0, "a").unwrap();
        ledger.spend(0.25, 0.0, "b").unwrap();
        assert_eq!(ledger.total(), (0.75, 0.0));
        assert!((ledger.remaining() - 0.25).abs() < 1e-12);
        let err = ledger.spend(0.3, 0.0, "c").unwrap_err().to_string();
        assert!(err.contains("0.75 of 1 spent"), "{err}");
        assert_eq!(ledger.spent.len(), 2);
    }

    #[test]
    fn slack_composes_many_small_spends_below_their_sum() {
        // 100 spends of 0.1 with slack 1e-5 total about 5.3 (the first advanced bound),
        // not 10.
        let mut ledger = Ledger::new(10.0, 1e-5, 1e-5).unwrap();
        for _ in 0..100 {
            ledger.spend(0.1, 0.0, "q").unwrap();
        }
        let (epsilon, delta) = ledger.total();
        let shrunk = 100.0 * 0.1 * (1.0 - (-0.1f64).exp()) / (1.0 + (-0.1f64).exp());
        let expected = shrunk + (2.0 * 100.0 * 0.01 * (1e5f64).ln()).sqrt();
        assert!((epsilon - expected).abs() < 1e-12 && epsilon < 10.0);
        assert_eq!(delta, 1e-5);
    }

    #[test]
    fn a_held_ledger_makes_others_wait_and_records_its_spends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.json");
        Ledger::new(2.0, 0.0, 0.0).unwrap().save(&path).unwrap();
        let mut held = Ledger::hold(&path, || panic!("nobody holds it yet")).unwrap();
        held.spend(0.5, 0.0, "first").unwrap();
        let path2 = path.clone();
        let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = waited.clone();
        let other = std::thread::spawn(move || {
            let mut held = Ledger::hold(&path2, || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap();
            // It reads the ledger as the first holder left it.
            assert_eq!(held.ledger().total().0, 0.5);
            held.spend(1.0, 0.0, "second").unwrap();
        });
        for _ in 0..500 {
            if waited.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            waited.load(std::sync::atomic::Ordering::SeqCst),
            "the second holder waits"
        );
        drop(held);
        other.join().unwrap();
        assert_eq!(Ledger::open(&path).unwrap().total().0, 1.5);
    }

    #[test]
    fn a_ledger_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budget.json");
        let mut ledger = Ledger::new(2.0, 0.0, 0.0).unwrap();
        ledger.spend(1.0, 0.0, "fit").unwrap();
        ledger.save(&path).unwrap();
        assert_eq!(Ledger::open(&path).unwrap(), ledger);
        std::fs::write(&path, "{}").unwrap();
        let err = Ledger::open(&path).unwrap_err().to_string();
        assert!(err.contains("is not a budget ledger"), "{err}");
    }
}
