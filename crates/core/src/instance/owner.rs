//! Ownership and per-user quotas: who made an instance, and how many one
//! user may have. The API layer decides visibility with
//! [`crate::users::Actor::may_access`] over [`Manager::owner_of`].

use dolly_types::{InstanceName, TemplateName};

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
        Ok(self
            .ctx
            .blocking(move |s| {
                let mut count = 0;
                for (t, n) in s.instance_names(None)? {
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
