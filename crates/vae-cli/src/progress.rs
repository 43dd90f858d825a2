//! Progress display: a bar on a terminal, plain lines otherwise (logs, pipes, CI).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

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
