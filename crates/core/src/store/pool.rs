//! `pool/T/M/`: warm pool members (a clone with its server running, not
//! yet anybody's instance), and `templates/T/pool.json`, a template's
//! pool size override. Members hold no user data: whatever a crash leaves
//! of the pool is removed at start.

use std::fs;
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use dolly_names::{InstanceName, TemplateName, VersionName};
use serde::{Deserialize, Serialize};

use super::layout::list_names;
use super::{json, nonce, Scratch, Store, StoreError};

/// `pool/T/M/member.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberMeta {
    pub template: TemplateName,
    pub member: InstanceName,
    pub version: VersionName,
    pub password: String,
    pub database: String,
    pub container: String,
    pub port: Option<u16>,
    pub created_at: DateTime<Utc>,
    /// Its server answered `SELECT 1`.
    pub ready: bool,
}

/// `templates/T/pool.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSize {
    pub size: usize,
}

impl Store {
    /// Creates the folder of a new pool member of `t` and returns its name.
    pub fn claim_member(&self, t: &TemplateName) -> Result<InstanceName, StoreError> {
        let parent = self.layout.pool_template(t);
        fs::create_dir_all(&parent).map_err(|e| StoreError::io("create", &parent, e))?;
        loop {
            let m = InstanceName::parse(&format!("m{}", nonce()))
                .map_err(|e| StoreError::io("name", &parent, io::Error::other(e)))?;
            let dir = self.layout.pool_member(t, &m);
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(m),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io("create", &dir, e)),
            }
        }
    }

    /// A member's datadir.
    pub fn member_data(&self, t: &TemplateName, m: &InstanceName) -> PathBuf {
        self.layout.pool_member(t, m).join("data")
    }

    /// A member's init file (inside its datadir).
    pub fn member_init_file(&self, t: &TemplateName, m: &InstanceName) -> PathBuf {
        self.member_data(t, m).join(crate::dbserver::INIT_FILE)
    }

    pub fn write_member(&self, meta: &MemberMeta) -> Result<(), StoreError> {
        let dir = self.layout.pool_member(&meta.template, &meta.member);
        json::write(&dir.join("member.json"), meta)
    }

    /// Whether member `m` of `t` has a folder (claimed before its container
    /// is created, so a container without one is a crashed fill's).
    pub fn member_exists(&self, t: &TemplateName, m: &InstanceName) -> bool {
        self.layout.pool_member(t, m).exists()
    }

    /// Removes a member's folder (a missing one is fine).
    pub fn remove_member(&self, t: &TemplateName, m: &InstanceName) -> Result<(), StoreError> {
        let dir = self.layout.pool_member(t, m);
        self.remove_via_scratch(&dir, &Scratch::Removing(nonce()))
    }

    /// Removes every pool member's folder (at start: members hold no user
    /// data, and their servers are gone or are removed with them).
    pub fn clear_pool(&self) -> Result<usize, StoreError> {
        let dir = self.layout.pool();
        let templates = list_names(&dir, |s| TemplateName::parse(s).ok())
            .map_err(|e| StoreError::io("list", &dir, e))?;
        let mut removed = 0;
        for t in templates {
            let tdir = self.layout.pool_template(&t);
            let members = list_names(&tdir, |s| InstanceName::parse(s).ok())
                .map_err(|e| StoreError::io("list", &tdir, e))?;
            for m in members {
                self.remove_member(&t, &m)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Hands member `m` of `t` out as instance `n`: its folder replaces
    /// the (empty) claimed folder of `t/n` by one rename, then `meta` (a
    /// ready instance) is written. Until that write the instance is
    /// half-made, which a crash turns into "removed" at the next start.
    pub fn hand_out_member(
        &self,
        t: &TemplateName,
        m: &InstanceName,
        meta: &super::InstanceMeta,
    ) -> Result<(), StoreError> {
        let from = self.layout.pool_member(t, m);
        let to = self.layout.instance(t, &meta.name);
        fs::rename(&from, &to).map_err(|e| StoreError::io("hand out", &from, e))?;
        let _ = fs::remove_file(to.join("member.json"));
        crate::faultpoint::hit("pool.moved");
        self.write_instance(meta)
    }

    /// The pool size override of `t`, if one was set.
    pub fn pool_size(&self, t: &TemplateName) -> Result<Option<PoolSize>, StoreError> {
        json::read(&self.layout.template_pool_size(t))
    }

    pub fn set_pool_size(&self, t: &TemplateName, size: PoolSize) -> Result<(), StoreError> {
        let dir = self.layout.template(t);
        fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        json::write(&self.layout.template_pool_size(t), &size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn t() -> TemplateName {
        TemplateName::parse("shop").unwrap()
    }

    #[test]
    fn members_are_claimed_with_fresh_names_and_cleared_at_start() {
        let (_dir, store) = testing::store();
        let a = store.claim_member(&t()).unwrap();
        let b = store.claim_member(&t()).unwrap();
        assert_ne!(a, b);
        fs::create_dir(store.member_data(&t(), &a)).unwrap();
        assert_eq!(store.clear_pool().unwrap(), 2);
        assert!(!store.member_data(&t(), &a).exists());
    }

    #[test]
    fn the_pool_size_override_round_trips() {
        let (_dir, store) = testing::store();
        assert_eq!(store.pool_size(&t()).unwrap(), None);
        store.set_pool_size(&t(), PoolSize { size: 3 }).unwrap();
        assert_eq!(store.pool_size(&t()).unwrap(), Some(PoolSize { size: 3 }));
    }
}
