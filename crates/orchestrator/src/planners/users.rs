//! Object store users: applied through their store's admin API once it serves, again whenever their
//! settings change (the record keeps a digest of what was applied).

use std::collections::BTreeSet;

use crate::desired::Desired;
use crate::plan::{Observed, Step};
use crate::planners::Partial;

/// The user planner refuses nothing: every difference can be acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {}

/// `ready_stores`: the stores whose admin API serves ([`crate::planners::object_stores::plan`]).
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    ready_stores: &BTreeSet<String>,
) -> Partial<UserError> {
    let mut p = Partial::default();
    for user in desired
        .object_users
        .iter()
        .filter(|u| ready_stores.contains(&u.store))
    {
        let key = (user.store.clone(), user.settings.uid.clone());
        if observed.object_users.get(&key) != Some(&user.digest()) {
            p.step(Step::ApplyObjectUser {
                store: user.store.clone(),
                uid: user.settings.uid.clone(),
            });
        }
    }
    p
}
