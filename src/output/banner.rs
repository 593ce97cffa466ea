//! Ansible's banner line: `PLAY [name] ****...`, 80 columns.

/// `PLAY [x] ****...` padded with stars to 80 columns, as Ansible prints.
pub fn banner(title: &str) -> String {
    // Ansible: `"%s %s" % (msg, "*" * max(3, columns - len(msg)))` with columns = 79.
    let stars = 79usize.saturating_sub(title.chars().count()).max(3);
    format!("{title} {}", "*".repeat(stars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_is_80_columns() {
        assert_eq!(banner("PLAY [all]").len(), 80);
        assert!(banner("TASK [x]").starts_with("TASK [x] ***"));
    }
}
