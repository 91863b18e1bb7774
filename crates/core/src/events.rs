//! What happened, for others to hear (webhooks): instances created,
//! deleted, expired, reset; snapshots made; imports done or failed.
//!
//! The domain only emits: [`Events::emit`] never waits (a full or absent
//! sink drops the event, logged). Delivery (HTTP, retries, signatures)
//! belongs to the server, which [`Events::subscribe`]s at start.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

/// What happened: the webhook body's `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    #[serde(rename = "instance.created")]
    InstanceCreated,
    #[serde(rename = "instance.deleted")]
    InstanceDeleted,
    #[serde(rename = "instance.expired")]
    InstanceExpired,
    #[serde(rename = "instance.reset")]
    InstanceReset,
    #[serde(rename = "snapshot.created")]
    SnapshotCreated,
    #[serde(rename = "import.succeeded")]
    ImportSucceeded,
    #[serde(rename = "import.failed")]
    ImportFailed,
}

impl EventKind {
    /// As the webhook's body spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstanceCreated => "instance.created",
            Self::InstanceDeleted => "instance.deleted",
            Self::InstanceExpired => "instance.expired",
            Self::InstanceReset => "instance.reset",
            Self::SnapshotCreated => "snapshot.created",
            Self::ImportSucceeded => "import.succeeded",
            Self::ImportFailed => "import.failed",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event, serialized as the webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub event: EventKind,
    pub at: DateTime<Utc>,
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The template version (of the instance, or the one imported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A snapshot's name, or why an import failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Event {
    pub fn new(event: EventKind, template: impl ToString) -> Self {
        Event {
            event,
            at: Utc::now(),
            template: template.to_string(),
            name: None,
            owner: None,
            version: None,
            message: None,
        }
    }

    /// The event of an instance: its name, owner and version.
    pub fn instance(event: EventKind, meta: &crate::store::InstanceMeta) -> Self {
        Event {
            name: Some(meta.name.to_string()),
            owner: meta.owner.clone(),
            version: Some(meta.version.to_string()),
            ..Event::new(event, &meta.template)
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Where events go: nowhere until someone subscribes.
#[derive(Debug, Default)]
pub struct Events {
    sink: OnceLock<mpsc::Sender<Event>>,
}

impl Events {
    /// Sends every later event to `tx` (the first subscriber only).
    pub fn subscribe(&self, tx: mpsc::Sender<Event>) -> bool {
        self.sink.set(tx).is_ok()
    }

    /// Hands `event` over without waiting.
    pub fn emit(&self, event: Event) {
        let Some(tx) = self.sink.get() else {
            return;
        };
        if let Err(e) = tx.try_send(event) {
            tracing::warn!(event = %e.into_inner().event, "event dropped: the webhook queue is full or closed");
        }
    }
}
