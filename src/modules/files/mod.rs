//! File modules: whole files (`stat`, `file`, `copy`, `template`, `fetch`,
//! `slurp`, `tempfile`, `find`, `assemble`), their content line by line
//! (`lineinfile`, `blockinfile`, `replace`) and archives (`archive`,
//! `unarchive`).
//!
//! Each module queries the remote state in one round trip (see
//! [`crate::modules::host::remote_file`] and
//! [`crate::modules::host::file_state`]), decides what differs, and applies
//! only that.

pub mod archive;
pub mod assemble;
pub mod blockinfile;
pub mod copy;
pub mod fetch;
pub mod file;
pub mod find;
pub mod lineinfile;
pub mod pyre;
pub mod replace;
pub mod slurp;
pub mod stat;
pub mod tempfile;
pub mod template;
pub mod unarchive;

use std::sync::Arc;

use super::Registry;

pub fn register(r: &mut Registry) {
    r.add(Arc::new(stat::StatModule));
    r.add(Arc::new(file::FileModule));
    r.add(Arc::new(copy::CopyModule));
    r.add(Arc::new(template::TemplateModule));
    r.add(Arc::new(fetch::FetchModule));
    r.add(Arc::new(slurp::SlurpModule));
    r.add(Arc::new(lineinfile::LineInFile));
    r.add(Arc::new(blockinfile::BlockInFile));
    r.add(Arc::new(replace::Replace));
    r.add(Arc::new(find::Find));
    r.add(Arc::new(tempfile::TempFile));
    r.add(Arc::new(assemble::Assemble));
    r.add(Arc::new(archive::Archive));
    r.add(Arc::new(unarchive::Unarchive));
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A `ModuleCtx` over the local connection, for module tests.

    use std::path::PathBuf;

    use serde_json::Value;

    use crate::connection::local::LocalConnection;
    use crate::modules::{Module, ModuleCtx, ModuleError, ModuleOutcome};
    use crate::template::Templar;
    use crate::yaml::Loc;

    pub struct TestEnv {
        pub conn: LocalConnection,
        pub templar: Templar,
        pub vars: minijinja::Value,
        pub search: Vec<PathBuf>,
        pub loc: Loc,
        pub dir: tempfile::TempDir,
    }

    impl TestEnv {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            TestEnv {
                conn: LocalConnection::new("testhost"),
                templar: Templar::new(),
                vars: minijinja::Value::from_pairs(Vec::<(String, minijinja::Value)>::new()),
                search: vec![dir.path().to_path_buf()],
                loc: Loc::synthetic("test"),
                dir,
            }
        }

        /// A path inside the temp dir, as a string.
        pub fn path(&self, rel: &str) -> String {
            self.dir.path().join(rel).display().to_string()
        }

        pub fn ctx(&self, check_mode: bool, diff_mode: bool) -> ModuleCtx<'_> {
            ModuleCtx {
                conn: &self.conn,
                host: "testhost",
                check_mode,
                diff_mode,
                become_: None,
                env: &[],
                templar: &self.templar,
                vars: &self.vars,
                search_paths: &self.search,
                loc: &self.loc,
                max_output: crate::connection::output::DEFAULT_MAX_OUTPUT,
                no_log: false,
                rlimit_nofile: None,
            }
        }

        pub async fn run(&self, m: &dyn Module, args: Value, check: bool) -> Result<ModuleOutcome, ModuleError> {
            let Value::Object(map) = args else {
                panic!("args must be an object")
            };
            crate::exec::task::execute(m, &self.ctx(check, true), map).await
        }
    }
}
