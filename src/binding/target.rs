//! Target normalisation shared by the bindings: decoded path segments become one SP-relative
//! target, so that one Cedar path names one resource whatever the binding.
//!
//! In: the segments as the CSE will read them (HTTP percent-decoded, CoAP Uri-Path as sent).
//! Out: `/<cse-id>/<path>` for CSE-relative (`cse-in/x`) and SP-relative (`~/id-in/cse-in/x`)
//! forms, `//<sp>/<path>` for absolute ones (`_/sp/id-in/x`). A segment that could name
//! something else upstream (empty, `.`, `..`, containing `/`, `\` or a control character) is
//! refused, as is a target without a segment after the prefix.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("target is not a normalised oneM2M target")]
pub struct BadTarget;

/// The SP-relative target for `segments`; `cse_id` resolves CSE-relative forms.
pub fn sp_relative<'a, I>(segments: I, cse_id: &str) -> Result<String, BadTarget>
where
    I: IntoIterator<Item = Cow<'a, str>>,
{
    let mut segments = segments.into_iter().peekable();
    let mut target = String::with_capacity(64);
    match segments.peek().map(|s| s.as_ref()) {
        Some("~") => {
            segments.next();
            target.push('/');
        }
        Some("_") => {
            segments.next();
            target.push_str("//");
        }
        _ => {
            target.push_str(cse_id);
            target.push('/');
        }
    }
    let mut first = true;
    for segment in segments {
        if ambiguous(&segment) {
            return Err(BadTarget);
        }
        if !first {
            target.push('/');
        }
        target.push_str(&segment);
        first = false;
    }
    if first {
        Err(BadTarget)
    } else {
        Ok(target)
    }
}

fn ambiguous(text: &str) -> bool {
    text.is_empty()
        || text == "."
        || text == ".."
        || text
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(segments: &[&str]) -> Result<String, BadTarget> {
        sp_relative(segments.iter().map(|s| Cow::Borrowed(*s)), "/id-in")
    }

    #[test]
    fn the_three_forms_become_sp_relative() {
        assert_eq!(of(&["~", "id-in", "cse-in"]).unwrap(), "/id-in/cse-in");
        assert_eq!(of(&["cse-in", "x"]).unwrap(), "/id-in/cse-in/x");
        assert_eq!(of(&["_", "sp", "id-in", "x"]).unwrap(), "//sp/id-in/x");
    }

    #[test]
    fn a_prefix_without_a_segment_is_refused() {
        assert_eq!(of(&[]), Err(BadTarget));
        assert_eq!(of(&["~"]), Err(BadTarget));
        assert_eq!(of(&["cse-in", "a/b"]), Err(BadTarget));
    }
}
