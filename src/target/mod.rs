//! Targets: every addressing form of TS-0004 §6.2.3 becomes the one name the CSE acts on, or is
//! refused before any stage runs — every rule that matches names must see that resource.
//!
//! In: a target's segments as the CSE will read them (HTTP percent-decoded, CoAP Uri-Path as
//! sent, MQTT `to` split at `/`), the first one `~` (SP-relative) or `_` (absolute) where the
//! binding marks those forms that way, and the gateway's [`Addressing`]. Out: a [`Canonical`]
//! target:
//!
//! - CSE-relative `cse-in/x`, SP-relative `/id-in/cse-in/x` and the own SP's absolute form
//!   `//sp/id-in/cse-in/x` all become `/id-in/cse-in/x`; `-` in place of the CSEBase name
//!   becomes the name.
//! - A resource id (`cnt123`, `/id-in/cnt123`, optionally followed by a virtual resource name
//!   such as `la`) stays `/id-in/cnt123[/la]` until [`resolve::Resolver`] replaces it with the
//!   structured name; [`Addressing::resource_id`] tells such a target apart. Nothing may
//!   decide on it before then.
//! - Another CSE of our SP (`/id-mn/...`) and other SPs (`//sp2/...`) are kept as written:
//!   their aliases are not ours to know, so `-` there is refused.
//!
//! Refused ([`BadTarget`]): an empty, `.` or `..` segment, one containing `/`, `\`, `#`, `?` or
//! a control character (ACME cuts `to` at `#` and reads the rest as an attribute name), a prefix without a path, a local name that starts with neither the CSEBase name,
//! `-` nor a resource id, an absolute target when no SP-ID is configured, and any target through
//! a group's fan-out point (`fopt`), whose members the gateway cannot see.

pub mod resolve;

use std::borrow::Cow;

/// Virtual resource names (TS-0001 §9.6.1.1, as ACME lists them) that may follow a resource id.
const VIRTUAL: [&str; 5] = ["la", "ol", "fopt", "ntsr", "pcu"];

/// Why a target was refused; each is answered with `rsc` 4000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadTarget {
    #[error("target has an empty, dot or ambiguous segment")]
    Ambiguous,
    #[error("target has no path after its prefix")]
    Short,
    #[error("local target names neither the CSEBase, `-` nor a resource id")]
    NotLocalName,
    #[error("`-` names the CSEBase of a CSE the gateway does not know")]
    ForeignPlaceholder,
    #[error("absolute targets are refused: no gateway.sp_id is configured")]
    NoSpId,
    #[error("targets through a group's fan-out point (fopt) are refused")]
    FanOut,
}

/// The names that make a target local: this gateway's CSE-ID, CSEBase name and SP-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// `/id-in`.
    cse_id: String,
    /// `cse-in`.
    cse_name: String,
    /// `//acme.example.com`, if configured.
    sp_id: Option<String>,
}

/// A canonical target, and the syntactic SP-relative form the sender wrote when it differs
/// (check values cover what was sent; rules match `to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub to: String,
    pub as_sent: Option<String>,
}

impl Addressing {
    pub fn new(cse_id: &str, cse_name: &str, sp_id: Option<&str>) -> Self {
        Addressing {
            cse_id: cse_id.to_owned(),
            cse_name: cse_name.to_owned(),
            sp_id: sp_id.map(str::to_owned),
        }
    }

    pub fn cse_id(&self) -> &str {
        &self.cse_id
    }

    pub fn cse_name(&self) -> &str {
        &self.cse_name
    }

    /// The canonical target for `segments` (see the module docs).
    pub fn canonical<'a, I>(&self, segments: I) -> Result<Canonical, BadTarget>
    where
        I: IntoIterator<Item = Cow<'a, str>>,
    {
        let segments: Vec<Cow<'a, str>> = segments.into_iter().collect();
        let (prefix, path) = match segments.first().map(AsRef::as_ref) {
            Some("~") => (Form::SpRelative, &segments[1..]),
            Some("_") => (Form::Absolute, &segments[1..]),
            _ => (Form::CseRelative, &segments[..]),
        };
        if path.iter().any(|s| ambiguous(s)) {
            return Err(BadTarget::Ambiguous);
        }
        let path: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
        let to = match prefix {
            Form::CseRelative => self.local(&path)?,
            Form::SpRelative => self.sp_relative(&path)?,
            Form::Absolute => self.absolute(&path)?,
        };
        // Only `-` and the own SP's absolute form are rewritten: spare the common case the copy.
        let rewritten = matches!(prefix, Form::Absolute) || path.contains(&"-");
        let as_sent = rewritten
            .then(|| sent_form(prefix, &self.cse_id, &path))
            .filter(|sent| *sent != to);
        Ok(Canonical { to, as_sent })
    }

    /// For a local resource-id target (`/id-in/cnt123` or `/id-in/cnt123/la`), the id and what
    /// follows it (`""` or `"/la"`); `None` for every other target.
    pub fn resource_id<'t>(&self, to: &'t str) -> Option<(&'t str, &'t str)> {
        let rest = to.strip_prefix(self.cse_id.as_str())?.strip_prefix('/')?;
        let (ri, tail) = rest
            .split_once('/')
            .map_or((rest, ""), |(ri, _)| (ri, &rest[ri.len()..]));
        (ri != self.cse_name).then_some((ri, tail))
    }

    /// `cse-in/x`, `-/x`, `cnt123`, `cnt123/la` on our CSE.
    fn local(&self, path: &[&str]) -> Result<String, BadTarget> {
        let (first, rest) = path.split_first().ok_or(BadTarget::Short)?;
        if path.contains(&"fopt") {
            return Err(BadTarget::FanOut);
        }
        let name = if *first == "-" {
            self.cse_name.as_str()
        } else {
            first
        };
        let structured = name == self.cse_name;
        let resource_id = match rest {
            [] => true,
            [virtual_name] => VIRTUAL.contains(virtual_name),
            _ => false,
        };
        if !structured && !resource_id {
            return Err(BadTarget::NotLocalName);
        }
        let mut to = String::with_capacity(self.cse_id.len() + 64);
        to.push_str(&self.cse_id);
        to.push('/');
        to.push_str(name);
        for segment in rest {
            to.push('/');
            to.push_str(segment);
        }
        Ok(to)
    }

    /// `/csi/...`: ours is local, another CSE's is kept as written.
    fn sp_relative(&self, path: &[&str]) -> Result<String, BadTarget> {
        let [csi, rest @ ..] = path else {
            return Err(BadTarget::Short);
        };
        if rest.is_empty() {
            return Err(BadTarget::Short);
        }
        if self.cse_id.strip_prefix('/') == Some(*csi) {
            return self.local(rest);
        }
        if rest[0] == "-" {
            return Err(BadTarget::ForeignPlaceholder);
        }
        Ok(format!("/{}", path.join("/")))
    }

    /// `//sp/csi/...`: our SP's is SP-relative, another SP's is kept as written.
    fn absolute(&self, path: &[&str]) -> Result<String, BadTarget> {
        let own = self.sp_id.as_deref().ok_or(BadTarget::NoSpId)?;
        let [sp, rest @ ..] = path else {
            return Err(BadTarget::Short);
        };
        // Exactly, as the CSE compares it: another spelling is another SP to the CSE too.
        if own.strip_prefix("//") == Some(*sp) {
            return self.sp_relative(rest);
        }
        match rest {
            [_, first, ..] if *first == "-" => Err(BadTarget::ForeignPlaceholder),
            [_, _, ..] => Ok(format!("//{}", path.join("/"))),
            _ => Err(BadTarget::Short),
        }
    }
}

#[derive(Clone, Copy)]
enum Form {
    CseRelative,
    SpRelative,
    Absolute,
}

/// The target as written, in SP-relative notation: `/id-in/-/x`, `//sp/id-in/x`, `/id-in/x`.
fn sent_form(form: Form, cse_id: &str, path: &[&str]) -> String {
    let joined = path.join("/");
    match form {
        Form::CseRelative => format!("{cse_id}/{joined}"),
        Form::SpRelative => format!("/{joined}"),
        Form::Absolute => format!("//{joined}"),
    }
}

fn ambiguous(text: &str) -> bool {
    text.is_empty()
        || text == "."
        || text == ".."
        || text
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '#' | '?') || c.is_control())
}

/// The gateway the unit tests stand for: CSE `/id-in` named `cse-in` in SP `//acme.example.com`.
#[cfg(test)]
impl Addressing {
    pub(crate) fn acme() -> Addressing {
        Addressing::new("/id-in", "cse-in", Some("//acme.example.com"))
    }
}

#[cfg(test)]
mod tests;
