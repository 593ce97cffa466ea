//! Remote paths as the modules' shell scripts see them, and the `stat`
//! format every file query uses.

/// `stat -c` format matching [`super::remote_file::parse_stat`].
pub const STAT_FMT: &str = "%F|%a|%u|%g|%U|%G|%s|%Y|%X|%Z|%i|%d|%h";

/// `dirname` of a remote path.
pub fn parent(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

/// `basename` of a path.
pub fn basename(path: &str) -> String {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string()
}
