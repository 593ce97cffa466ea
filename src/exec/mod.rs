//! Execution: connections per host, the playbook runner, facts.

pub mod conn_pool;
pub mod facts;
pub mod runner;
pub mod vars;
