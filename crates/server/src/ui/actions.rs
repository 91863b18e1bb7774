//! The UI's actions: every button on an instance's page is a form posting
//! to [`action`] or [`snapshot_action`], which call the domain through the
//! ownership-checked extractors and redirect back with a flash. The action
//! in the path is parsed into an enum first: an unknown one is a 400 before
//! anything runs.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use dolly_core::instance::ResetTarget;
use dolly_types::{InstanceName, SnapshotName};
use serde::Deserialize;

use super::layout;
use super::{redirect_with, Flash, Posted};
use crate::api::{OwnedInstance, OwnedSnapshot};
use crate::error::ApiError;

/// What a button on an instance's page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAction {
    Extend,
    Protect,
    Unprotect,
    Stop,
    Start,
    Reset,
    Snapshot,
    Delete,
}

impl InstanceAction {
    const ALL: [Self; 8] = [
        Self::Extend,
        Self::Protect,
        Self::Unprotect,
        Self::Stop,
        Self::Start,
        Self::Reset,
        Self::Snapshot,
        Self::Delete,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Its path segment, and the flash's action name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extend => "extend",
            Self::Protect => "protect",
            Self::Unprotect => "unprotect",
            Self::Stop => "stop",
            Self::Start => "start",
            Self::Reset => "reset",
            Self::Snapshot => "snapshot",
            Self::Delete => "delete",
        }
    }
}

/// What a button on a snapshot's row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    Restore,
    Branch,
    Delete,
}

impl SnapshotAction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "restore" => Some(Self::Restore),
            "branch" => Some(Self::Branch),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The flash's action name (the form it is shown next to).
    pub fn flash(self) -> &'static str {
        match self {
            Self::Restore => "restore",
            Self::Branch => "branch",
            Self::Delete => "remove-snapshot",
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn ttl(form: &ActionForm) -> Result<Duration, ApiError> {
    let s = form.ttl.as_deref().unwrap_or("").trim();
    s.parse()
        .map(Duration::from_secs)
        .map_err(|_| ApiError::BadRequest(format!("ttl {s:?} is not a number of seconds")))
}

/// `POST /ui/i/T/N/{extend,protect,unprotect,stop,start,reset,snapshot,delete}`
pub async fn action(
    path: web::Path<(String, String, String)>,
    owned: Result<OwnedInstance, ApiError>,
    Posted(form): Posted<ActionForm>,
) -> HttpResponse {
    let (raw_t, raw_n, raw_action) = path.into_inner();
    let back = format!("/ui/i/{raw_t}/{raw_n}");
    let action = InstanceAction::parse(&raw_action);
    let flash_action = action.map_or_else(|| raw_action.clone(), |a| a.as_str().to_owned());
    let done = async {
        let action =
            action.ok_or_else(|| ApiError::BadRequest(format!("no such action: {raw_action}")))?;
        let owned = owned?;
        let (t, n) = (owned.template(), owned.name());
        let text = match action {
            InstanceAction::Extend => {
                let i = owned.extend(ttl(&form)?).await?;
                match i.meta.expires_at {
                    Some(e) => format!("Extended: expires {}.", layout::relative(e, Utc::now())),
                    None => "It no longer expires.".to_owned(),
                }
            }
            InstanceAction::Protect => {
                owned.protect(true).await?;
                "Protected: it will not be reaped.".to_owned()
            }
            InstanceAction::Unprotect => {
                owned.protect(false).await?;
                "No longer protected.".to_owned()
            }
            InstanceAction::Stop => {
                owned.stop().await?;
                "Stopped; its data, port and password stay.".to_owned()
            }
            InstanceAction::Start => {
                owned.start().await?;
                "Started.".to_owned()
            }
            InstanceAction::Reset => {
                let target = match form.target.as_deref() {
                    Some("latest") => ResetTarget::Latest,
                    _ => ResetTarget::Original,
                };
                let i = owned.reset(target).await?;
                format!("Reset to {}.", i.meta.version)
            }
            InstanceAction::Snapshot => {
                let s = SnapshotName::parse(form.name.as_deref().unwrap_or("").trim())?;
                let message = form
                    .message
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned);
                owned.snapshot(&s, message).await?;
                format!("Snapshot {s} taken.")
            }
            InstanceAction::Delete => {
                owned.delete(form.force.is_some()).await?;
                return Ok(("/ui/".to_owned(), format!("Instance {t}/{n} deleted.")));
            }
        };
        Ok::<_, ApiError>((back.clone(), text))
    }
    .await;
    match done {
        Ok((to, text)) => redirect_with(&to, &Flash::ok(&flash_action, text)),
        Err(e) => redirect_with(&back, &Flash::error(&flash_action, &e)),
    }
}

/// `POST /ui/i/T/N/snapshots/S/{restore,branch,delete}`
pub async fn snapshot_action(
    path: web::Path<(String, String, String, String)>,
    snap: Result<OwnedSnapshot, ApiError>,
    Posted(form): Posted<ActionForm>,
) -> HttpResponse {
    let (raw_t, raw_n, _, raw_action) = path.into_inner();
    let back = format!("/ui/i/{raw_t}/{raw_n}");
    let action = SnapshotAction::parse(&raw_action);
    let flash_action = action.map_or("restore", SnapshotAction::flash);
    let done = async {
        let action =
            action.ok_or_else(|| ApiError::BadRequest(format!("no such action: {raw_action}")))?;
        let snap = snap?;
        let (t, n, s) = (
            snap.instance().template(),
            snap.instance().name(),
            snap.name(),
        );
        match action {
            SnapshotAction::Restore => {
                snap.restore().await?;
                Ok((back.clone(), format!("Restored snapshot {s}.")))
            }
            SnapshotAction::Delete => {
                snap.delete().await?;
                Ok((back.clone(), format!("Snapshot {s} deleted.")))
            }
            SnapshotAction::Branch => {
                let new = InstanceName::parse(form.name.as_deref().unwrap_or("").trim())?;
                snap.instance().branch(&new, s.clone(), None).await?;
                Ok((
                    format!("/ui/i/{t}/{new}"),
                    format!("Instance {t}/{new} created from {n}@{s}."),
                ))
            }
        }
    }
    .await;
    match done {
        Ok((to, text)) => redirect_with(&to, &Flash::ok(flash_action, text)),
        Err(e) => redirect_with(&back, &Flash::error(flash_action, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_path_segment() {
        for a in InstanceAction::ALL {
            assert_eq!(InstanceAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(InstanceAction::parse("drop"), None);
        assert_eq!(
            SnapshotAction::parse("branch"),
            Some(SnapshotAction::Branch)
        );
        assert_eq!(SnapshotAction::parse("nope"), None);
    }
}
