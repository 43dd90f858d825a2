//! Progress display: a bar on a terminal, plain lines otherwise (logs, pipes, CI).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use vae::train::TrainEvent;

/// Whether to draw bars: only when a person watches stderr.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar of `len` steps with a message, or a hidden one when not interactive.
pub fn bar(len: u64, template: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(template)
        .expect("templates are constants")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Prints a line above the bar (or plainly on stderr when there is none).
pub fn println(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// `12345.6` as `12,346`: throughput reads better with separators.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The bar of a training run.
pub fn train_bar() -> ProgressBar {
    bar(0, "{prefix} [{bar:30}] {pos}/{len} batches  {msg}")
}

/// Shows a training event: the bar moves with batches, each finished epoch prints a line.
/// `name` prefixes lines when several models train in turn.
pub fn show_train_event(bar: &ProgressBar, epochs: usize, name: &str, event: &TrainEvent) {
    match event {
        TrainEvent::Started { batches_per_epoch, .. } => bar.set_length(*batches_per_epoch as u64),
        TrainEvent::Batch {
            epoch,
            batch,
            running_loss,
            images_per_sec,
            ..
        } => {
            bar.set_prefix(format!("{name}epoch {}/{epochs}", epoch + 1));
            bar.set_position(*batch as u64 + 1);
            bar.set_message(format!("loss {running_loss:.2}  {} img/s", thousands(*images_per_sec)));
        }
        TrainEvent::Evaluating { .. } => bar.set_message("evaluating on the test split…"),
        TrainEvent::EpochDone(m) => {
            println(
                bar,
                &format!(
                    "{name}epoch {}/{epochs}  train {:.2}  test {:.2} (recon {:.2}, kl {:.2})  {} img/s  {:.1} s",
                    m.epoch,
                    m.train_loss,
                    m.test_loss,
                    m.test_recon,
                    m.test_kl,
                    thousands(m.images_per_sec),
                    m.seconds
                ),
            );
            bar.set_position(0);
        }
    }
}
