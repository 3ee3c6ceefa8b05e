//! Progress bars for blob transfers, for the fits of cross-validation and searches and for
//! the model runs of explanations, on stderr when it is a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use skiff_pack::registry::{Progress, ProgressSink, PushOptions};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// One bar per blob in flight.
struct Bars {
    bars: MultiProgress,
    by_digest: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn begin(&self, digest: &str, size: u64) {
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bar = self.bars.add(ProgressBar::new(size).with_style(style));
        bar.set_prefix(short(digest).to_string());
        let mut by_digest = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = by_digest.insert(digest.to_string(), bar) {
            old.finish_and_clear(); // a retry starts over
        }
    }

    fn advance(&self, digest: &str, bytes: u64) {
        if let Some(bar) = self
            .by_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
        {
            bar.inc(bytes);
        }
    }

    fn end(&self, digest: &str) {
        if let Some(bar) = self
            .by_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest)
        {
            bar.finish();
        }
    }
}

/// `sha256:0123456789ab…` → `0123456789ab`.
fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Registry options for a command: plain HTTP with `insecure`, and progress bars when stderr
/// is a terminal (scripts and logs get the one-line results only).
pub fn registry_options(insecure: bool) -> PushOptions {
    let progress = std::io::stderr().is_terminal().then(|| {
        ProgressSink(Arc::new(Bars {
            bars: MultiProgress::new(),
            by_digest: Mutex::new(HashMap::new()),
        }) as Arc<dyn Progress>)
    });
    PushOptions {
        insecure,
        progress,
        ..PushOptions::default()
    }
}

/// A bar of steps done: fits (`skiff cv`, `skiff tune`), model runs (`skiff explain`). Draws
/// nothing unless stderr is a terminal.
pub struct CountBar(Option<ProgressBar>);

impl CountBar {
    /// A bar counting `what` ("fits", "runs").
    pub fn new(what: &str) -> Self {
        CountBar(std::io::stderr().is_terminal().then(|| {
            let template = format!("{what} [{{bar:30}}] {{pos}}/{{len}} {{elapsed}}");
            let style = ProgressStyle::with_template(&template)
                .expect("a valid template")
                .progress_chars("=> ");
            ProgressBar::new(0).with_style(style)
        }))
    }

    /// `done` of `total` steps have finished.
    pub fn update(&self, done: usize, total: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    /// The work is `total` steps.
    pub fn set_total(&self, total: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(total as u64);
        }
    }

    /// One more step has finished (from any thread).
    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Takes the bar off the screen, before the results are printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
