//! When a session's client may start. The splitter does not wait for the
//! server: it reads, cuts and queues (and writes rows files) while the
//! import server starts, and each session's `exec` waits here until the
//! server answers and the serial session before it has ended. A split
//! load that starts this way is ordered exactly as one whose splitter
//! waited: a session starts after what ran alone before it, only the
//! splitter no longer stands still meanwhile.

use tokio::sync::watch;

/// What a session waits for before its client starts: `Some(true)` once
/// it may, `Some(false)` (or its sender gone) if it never may.
#[derive(Clone)]
pub(in crate::template) struct After(watch::Receiver<Option<bool>>);

/// Says once whether the sessions waiting on its [`After`] may start;
/// dropped without a word, they never do.
pub(in crate::template) struct Opener(watch::Sender<Option<bool>>);

/// A gate and the [`After`] that waits for it.
pub(in crate::template) fn gate() -> (Opener, After) {
    let (tx, rx) = watch::channel(None);
    (Opener(tx), After(rx))
}

impl Opener {
    pub fn open(self, ok: bool) {
        let _ = self.0.send(Some(ok));
    }
}

impl After {
    /// Already open: sessions start at once.
    #[cfg(test)]
    pub fn now() -> Self {
        let (open, after) = gate();
        open.open(true);
        after
    }

    /// Whether the session may start, if that is known yet (its
    /// [`Opener`] dropped without a word: never).
    pub fn opened(&self) -> Option<bool> {
        let said = *self.0.borrow();
        match said {
            None if self.0.has_changed().is_err() => Some(false),
            said => said,
        }
    }

    /// Whether the session may start, once that is known.
    pub async fn wait(mut self) -> bool {
        match self.0.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(false),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_starts_when_opened_and_never_when_barred_or_forgotten() {
        assert!(After::now().wait().await);
        let (open, after) = gate();
        let waiter = tokio::spawn(after.clone().wait());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(after.opened(), None);
        open.open(true);
        assert_eq!(after.opened(), Some(true));
        assert!(waiter.await.unwrap());
        assert!(after.wait().await, "a late waiter sees it open too");

        let (open, after) = gate();
        open.open(false);
        assert!(!after.wait().await);
        let (open, after) = gate();
        drop(open);
        assert_eq!(after.opened(), Some(false));
        assert!(!after.wait().await);
    }
}
