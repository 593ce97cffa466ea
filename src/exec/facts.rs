//! Native fact gathering (`setup`): one shell round trip, no Python.

use serde_json::{Map, Value};

use crate::connection::{Become, ConnError, Connection};

/// Gather `ansible_facts` for a host. `subset` follows Ansible's
/// `gather_subset` (`all`, `min`, `!hardware`, `network`, ...).
pub async fn gather(
    _conn: &dyn Connection,
    _subset: &[String],
    _become: Option<&Become>,
) -> Result<Map<String, Value>, ConnError> {
    unimplemented!("facts")
}
