//! Ctrl-C (SIGINT) for commands that stop cleanly with a summary.
//!
//! tokio's `signal::ctrl_c()` installs its handler only when the future is first polled, and a
//! `select!` that finds another branch ready first may not poll it for a while. A SIGINT before
//! then either kills the process without its summary or, when the process inherited SIGINT as
//! ignored (any background job of a non-interactive shell, such as a test runner's), is lost
//! and the command never stops. [`Interrupt::listen`] installs the handler at once.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A SIGINT listener installed when created.
pub struct Interrupt(Signal);

impl Interrupt {
    pub fn listen() -> std::io::Result<Interrupt> {
        signal(SignalKind::interrupt()).map(Interrupt)
    }

    /// Completes at the next SIGINT (cancel-safe: usable in `select!` loops).
    pub async fn received(&mut self) {
        self.0.recv().await;
    }
}
