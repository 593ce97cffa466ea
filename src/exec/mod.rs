//! Execution: connections per host, the task runner, facts.

pub mod facts;
