//! Ownership and per-user quotas: who made an instance, and how many
//! instances and snapshots one user may have. The API layer decides
//! visibility with [`crate::users::Actor::may_access`] over
//! [`Manager::owner_of`].
//!
//! Quotas count what exists plus what is being made: a create or a
//! snapshot takes a [`Reservations`] entry under its gate (the same lock
//! its count runs under) before it starts cloning, and gives it back when
//! it ends, made or failed. So any number of concurrent requests never
//! ends above a limit.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use dolly_names::{InstanceName, SnapshotName, TemplateName};

use super::{InstanceError, Manager};
use crate::store::StoreError;
use crate::users::Actor;

impl Manager {
    /// The owner of the ready instance `t/n` (`None`: made without users),
    /// or `NotFound`.
    pub async fn owner_of(
        &self,
        t: &TemplateName,
        n: &InstanceName,
    ) -> Result<Option<String>, InstanceError> {
        Ok(self.ready_meta(t, n).await?.owner)
    }

    /// `Ok` when `actor` may see and act on `t/n`; `NotFound` otherwise,
    /// exactly as if it did not exist.
    pub async fn check_access(
        &self,
        t: &TemplateName,
        n: &InstanceName,
        actor: Option<&Actor>,
    ) -> Result<(), InstanceError> {
        let owner = self.owner_of(t, n).await?;
        match actor {
            Some(a) if !a.may_access(owner.as_deref()) => {
                Err(InstanceError::NotFound(t.clone(), n.clone()))
            }
            _ => Ok(()),
        }
    }

    /// How many instances (made or being made) `user` owns.
    pub async fn owned_count(&self, user: &str) -> Result<usize, InstanceError> {
        let user = user.to_owned();
        let (in_flight, mine) = self.creating.for_owner(&user);
        Ok(self
            .ctx
            .store
            .run(move |s| {
                let mut count = mine;
                for (t, n) in s.instance_names(None)? {
                    if in_flight.contains(&(t.clone(), n.clone())) {
                        continue; // counted as a reservation
                    }
                    // Unreadable metadata is nobody's (the next start
                    // sets it aside).
                    if let Ok(Some(m)) = s.read_instance(&t, &n) {
                        count += usize::from(m.owner.as_deref() == Some(user.as_str()));
                    }
                }
                Ok::<_, StoreError>(count)
            })
            .await?)
    }

    /// Snapshots kept (or being taken) of `user`'s instances (`None`:
    /// of every instance).
    pub async fn snapshot_count(&self, user: Option<&str>) -> Result<usize, InstanceError> {
        let user = user.map(str::to_owned);
        let (in_flight, mine) = match &user {
            Some(u) => self.snapshotting.for_owner(u),
            None => self.snapshotting.all(),
        };
        Ok(self
            .ctx
            .store
            .run(move |s| {
                let mut count = mine;
                for (t, n) in s.instance_names(None)? {
                    let Ok(Some(m)) = s.read_instance(&t, &n) else {
                        continue;
                    };
                    if user.is_some() && m.owner != user {
                        continue;
                    }
                    for snap in s.snapshots(&t, &n)? {
                        let key = (t.clone(), n.clone(), snap.name.clone());
                        count += usize::from(!in_flight.contains(&key));
                    }
                }
                Ok::<_, StoreError>(count)
            })
            .await?)
    }

    /// The global `max_snapshots` and the owner's own, for one more
    /// snapshot of an instance owned by `owner`; run under the snapshot
    /// gate.
    pub(super) async fn check_snapshot_quota(
        &self,
        owner: Option<&str>,
        actor: Option<&Actor>,
    ) -> Result<(), InstanceError> {
        if let Some(max) = self.ctx.settings.max_snapshots {
            if self.snapshot_count(None).await? >= max {
                return Err(InstanceError::TooManySnapshots(max));
            }
        }
        // The instance's owner's quota (an admin acting on it spends the
        // owner's, not their own).
        let max = match actor {
            Some(a) if Some(a.name.as_str()) == owner => a.max_snapshots,
            _ => None,
        };
        if let (Some(user), Some(max)) = (owner, max) {
            if self.snapshot_count(Some(user)).await? >= max {
                return Err(InstanceError::SnapshotQuotaReached {
                    user: user.to_owned(),
                    max,
                });
            }
        }
        Ok(())
    }

    /// The actor's own `max_instances` (run under the create gate, so
    /// concurrent creates cannot both pass it).
    pub(super) async fn check_quota(&self, actor: Option<&Actor>) -> Result<(), InstanceError> {
        let Some(Actor {
            name,
            max_instances: Some(max),
            ..
        }) = actor
        else {
            return Ok(());
        };
        if self.owned_count(name).await? >= *max {
            return Err(InstanceError::QuotaReached {
                user: name.clone(),
                max: *max,
            });
        }
        Ok(())
    }
}

/// What is being made, by key, with its owner: counted by the quotas until
/// it is made (then its metadata counts) or has failed.
pub(super) struct Reservations<K> {
    map: Mutex<HashMap<K, Option<String>>>,
}

impl<K> Default for Reservations<K> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Reservations<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Option<String>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `key` for `owner` until the guard is dropped.
    pub(super) fn reserve(&self, key: K, owner: Option<String>) -> Reserved<'_, K> {
        self.lock().insert(key.clone(), owner);
        Reserved { from: self, key }
    }

    /// Every key being made, and how many of them `owner`'s.
    fn for_owner(&self, owner: &str) -> (Vec<K>, usize) {
        let map = self.lock();
        let mine = map.values().filter(|o| o.as_deref() == Some(owner)).count();
        (map.keys().cloned().collect(), mine)
    }

    /// Every key being made, and their count.
    fn all(&self) -> (Vec<K>, usize) {
        let map = self.lock();
        (map.keys().cloned().collect(), map.len())
    }
}

/// A reservation, given back on drop (made, failed or cancelled).
pub(super) struct Reserved<'a, K: Hash + Eq> {
    from: &'a Reservations<K>,
    key: K,
}

impl<K: Hash + Eq> Drop for Reserved<'_, K> {
    fn drop(&mut self) {
        self.from
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// A snapshot's key in [`Reservations`].
pub(super) type SnapshotKey = (TemplateName, InstanceName, SnapshotName);
