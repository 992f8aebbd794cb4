//! Target patterns for `[checks]` and plausibility rules: the same `*` wildcard as Cedar's
//! `like` (any run of characters, `/` included), so one notation serves config and policies.
//!
//! In: a pattern from the configuration and a normalised target. Out: whether it matches.
//!
//! Hand-written on purpose: glob crates (`glob`, `globset`, `wildmatch`) give `?`, `[`, `{` or
//! `**` a meaning and stop `*` at `/`; Cedar's `like` has only `*`, and config and policies
//! must mean the same thing by the same text.

/// A target pattern. `*` matches any run of characters; everything else matches itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(text: impl Into<String>) -> Self {
        Pattern(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Greedy match with one backtrack point (the last `*`): linear in practice, never worse
    /// than pattern × target.
    pub fn matches(&self, target: &str) -> bool {
        let (p, t) = (self.0.as_bytes(), target.as_bytes());
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn wildcard_matches_any_run_including_slashes() {
        let p = Pattern::new("/id-in/cse-in/meter-*");
        assert!(p.matches("/id-in/cse-in/meter-01"));
        assert!(p.matches("/id-in/cse-in/meter-01/data/la"));
        assert!(p.matches("/id-in/cse-in/meter-"));
        assert!(!p.matches("/id-in/cse-in/lamp-01"));
        assert!(!p.matches("/id-in/cse-in/meter"));
    }

    #[test]
    fn literal_and_inner_wildcards() {
        assert!(Pattern::new("/a").matches("/a"));
        assert!(!Pattern::new("/a").matches("/ab"));
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("/a/*/c").matches("/a/b/x/c"));
        assert!(!Pattern::new("/a/*/c").matches("/a/b/x/d"));
        assert!(Pattern::new("*b*b").matches("abab"));
        assert!(!Pattern::new("*b*b").matches("abac"));
    }
}
