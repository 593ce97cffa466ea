//! The controller's users, by uid, from the password database (NSS, as
//! `id -un` reads it): for the audit log, Ansible's log file and
//! `ansible_managed`.

/// The name of `uid`, or `None` when the password database has none.
pub fn name(uid: libc::uid_t) -> Option<String> {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into pwd and buf (sized as given) only.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
    None
}

/// The name of `uid` (the uid itself when it has none).
pub fn name_or_uid(uid: libc::uid_t) -> String {
    name(uid).unwrap_or_else(|| uid.to_string())
}

/// The name of the user running rigger.
pub fn current() -> String {
    // SAFETY: getuid cannot fail.
    name_or_uid(unsafe { libc::getuid() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_named_and_an_unknown_uid_is_its_number() {
        assert_eq!(super::name(0).as_deref(), Some("root"));
        assert_eq!(super::name_or_uid(4_000_000_000), "4000000000");
    }
}
