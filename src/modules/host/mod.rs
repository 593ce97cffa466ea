//! The toolkit every module shares: what a module needs to read and change
//! a host, once each.
//!
//! - [`command`]: run one of the module's scripts, failing with what failed
//!   and the command's own words ([`command::run_checked`]).
//! - [`remote_file`]: the one description of a remote path
//!   ([`remote_file::RemoteStat`], [`remote_file::Kind`]) and of the wanted
//!   owner/group/mode ([`remote_file::Attrs`]); stat parsing, the login
//!   user's ids and umask, backup scripts, the shell snippets the file
//!   modules build on.
//! - [`file_state`]: a path's stat with its content, resolved path and the
//!   remote user (`FileState`), read in one round trip, and
//!   the owner/mode changes that make it match.
//! - [`paths`]: remote `dirname`/`basename` and the `stat` format.
//! - [`prefetch`]: check mode's batched query of the paths the next tasks
//!   will ask about (one round trip for many tasks).
//! - [`text`]: `--diff` entries, line joining, tagged output lines, sizes.
//! - [`digest`]: SHA-1 (Ansible's checksum) and hex.
//! - [`opts`]: option declarations several modules share.
//!
//! Modules never talk to a connection directly for these things: a helper
//! here is the one place its shell text and its failure message live.

pub mod command;
pub mod digest;
pub mod file_state;
pub mod module_result;
pub mod opts;
pub mod paths;
pub mod prefetch;
pub mod remote_file;
pub mod text;
pub mod upload;
