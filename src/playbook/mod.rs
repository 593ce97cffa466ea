//! Playbooks: YAML to a typed, located AST.
