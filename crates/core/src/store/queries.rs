//! Reads that span many files of the data folder, each answered by one
//! walk (one blocking task for async callers, see [`super::AsyncStore`]).

use std::collections::HashSet;

use dolly_names::{TemplateName, VersionName};

use super::{InstanceMeta, Store, StoreError};

impl Store {
    /// Every ready instance (of `only` when given). An instance whose
    /// metadata cannot be read is left out and logged (the next start sets
    /// it aside); a folder that cannot be listed is an error.
    pub fn ready_instances(
        &self,
        only: Option<&TemplateName>,
    ) -> Result<Vec<InstanceMeta>, StoreError> {
        let mut out = Vec::new();
        for (t, n) in self.instance_names(only)? {
            match self.read_instance(&t, &n) {
                Ok(Some(m)) if m.ready => out.push(m),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(template = %t, instance = %n, error = %e, "instance metadata unreadable; left out")
                }
            }
        }
        Ok(out)
    }

    /// Template versions that instances of `t` or their snapshots come
    /// from. Any metadata it cannot read is an error (fail closed: the
    /// caller then keeps every version).
    pub fn versions_in_use(&self, t: &TemplateName) -> Result<HashSet<VersionName>, StoreError> {
        let mut used = HashSet::new();
        for (t, n) in self.instance_names(Some(t))? {
            if let Some(m) = self.read_instance(&t, &n)? {
                used.insert(m.version);
            }
            for snap in self.snapshots(&t, &n)? {
                used.insert(snap.template_version);
            }
        }
        Ok(used)
    }

    /// Templates that have a live version, sorted.
    pub fn live_templates(&self) -> Result<Vec<TemplateName>, StoreError> {
        let mut out = Vec::new();
        for t in self.template_names()? {
            if self.current_version(&t)?.is_some() {
                out.push(t);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::instances::tests::{meta, names};
    use crate::store::testing::store;

    #[test]
    fn ready_instances_leave_out_the_unready_and_versions_in_use_count_them() {
        let (_d, s) = store();
        let (t, n) = names();
        s.claim_instance(&t, &n).unwrap();
        let mut m = meta(&t, &n);
        m.ready = false;
        s.write_instance(&m).unwrap();
        assert!(s.ready_instances(None).unwrap().is_empty());
        assert!(s.versions_in_use(&t).unwrap().contains(&m.version));
        m.ready = true;
        s.write_instance(&m).unwrap();
        assert_eq!(s.ready_instances(Some(&t)).unwrap().len(), 1);
        assert!(s.live_templates().unwrap().is_empty());
    }
}
