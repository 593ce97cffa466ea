//! Account modules: `user`, `group`, `authorized_key`, `known_hosts`.
//!
//! Users and groups are read from the host's databases in one round trip
//! (`getent`), changed with `useradd`/`usermod`/`groupadd`; SSH key files
//! are edited on the controller and written atomically.

pub mod authorized_key;
pub mod known_hosts;
pub mod user;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(user::UserModule));
    r.add(Arc::new(user::GroupModule));
    r.add(Arc::new(authorized_key::AuthorizedKeyModule));
    r.add(Arc::new(known_hosts::KnownHosts));
}
