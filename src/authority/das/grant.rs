//! Which grant rule allows a token request: the first `[[das.grants]]` entry that names the
//! node (by id or by one of its groups), covers every requested resource with one of its
//! target patterns, allows every requested operation and audience, and — for a gateway asking
//! on the node's behalf — names that gateway in `via`.

use super::config::{operation_bit, Grant};
use crate::feed::NodeBody;

/// What a token is asked for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub node: String,
    pub aud: Vec<String>,
    pub ris: Vec<String>,
    pub ops: Vec<String>,
}

/// At most this many resources, operations or audiences in one request.
pub const MAX_LIST: usize = 64;

impl Ask {
    /// The `acop` mask of the requested operations, or why they are not operations.
    pub fn mask(&self) -> Result<u64, String> {
        if self.ops.is_empty() || self.ris.is_empty() || self.aud.is_empty() {
            return Err("aud, ris and ops must each name at least one entry".into());
        }
        if [self.ops.len(), self.ris.len(), self.aud.len()]
            .iter()
            .any(|&n| n > MAX_LIST)
        {
            return Err(format!(
                "aud, ris and ops hold at most {MAX_LIST} entries each"
            ));
        }
        let printable =
            |s: &String| !s.is_empty() && s.len() <= 1024 && !s.contains(char::is_control);
        if !self.ris.iter().chain(&self.aud).all(printable) {
            return Err("ris and aud entries are 1 to 1024 printable characters".into());
        }
        self.ops.iter().try_fold(0, |mask, op| {
            operation_bit(op)
                .map(|bit| mask | bit)
                .ok_or_else(|| format!("{op:?} is not an operation"))
        })
    }
}

/// The first grant that allows `ask` for `node` (asked `via` a gateway, if any).
pub fn find<'a>(
    grants: &'a [Grant],
    node: &NodeBody,
    ask: &Ask,
    mask: u64,
    via: Option<&str>,
) -> Option<&'a Grant> {
    grants.iter().find(|g| {
        let who = g.nodes.contains(&node.id) || g.groups.iter().any(|x| node.groups.contains(x));
        let targets = ask
            .ris
            .iter()
            .all(|r| g.targets.iter().any(|t| t.matches(r)));
        let ops = mask & !g.operations == 0;
        let aud = ask.aud.iter().all(|a| g.aud.contains(a));
        let via = via.is_none_or(|gw| g.via.iter().any(|v| v == gw));
        who && targets && ops && aud && via
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Pattern;
    use crate::store::{NodeKind, NodeStatus};

    fn grant() -> Grant {
        Grant {
            nodes: vec!["Cmeter".into()],
            groups: vec!["meters".into()],
            targets: vec![Pattern::new("/cse-in/meter/*")],
            operations: 2 | 1,
            ttl_s: 60,
            uses: Some(3),
            aud: vec!["/id-mn".into(), "/id-in".into()],
            via: vec!["gw-a".into()],
        }
    }

    fn node(id: &str, groups: &[&str]) -> NodeBody {
        NodeBody {
            id: id.into(),
            kind: NodeKind::Ae,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            status: NodeStatus::Active,
            registrar: None,
        }
    }

    fn ask(ris: &str, ops: &[&str], aud: &str) -> Ask {
        Ask {
            node: "Cmeter".into(),
            aud: vec![aud.into()],
            ris: vec![ris.into()],
            ops: ops.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn a_grant_allows_only_what_it_names() {
        let grants = [grant()];
        let ok = ask("/cse-in/meter/data", &["retrieve"], "/id-mn");
        let mask = ok.mask().unwrap();
        assert!(find(&grants, &node("Cmeter", &[]), &ok, mask, None).is_some());
        assert!(find(&grants, &node("Cother", &["meters"]), &ok, mask, None).is_some());
        assert!(find(&grants, &node("Cother", &[]), &ok, mask, None).is_none());
        assert!(find(&grants, &node("Cmeter", &[]), &ok, mask, Some("gw-a")).is_some());
        assert!(find(&grants, &node("Cmeter", &[]), &ok, mask, Some("gw-b")).is_none());
        let delete = ask("/cse-in/meter/data", &["delete"], "/id-mn");
        let m = delete.mask().unwrap();
        assert!(find(&grants, &node("Cmeter", &[]), &delete, m, None).is_none());
        let elsewhere = ask("/cse-in/lamp", &["retrieve"], "/id-mn");
        assert!(find(&grants, &node("Cmeter", &[]), &elsewhere, mask, None).is_none());
        let other_aud = ask("/cse-in/meter/data", &["retrieve"], "/id-x");
        assert!(find(&grants, &node("Cmeter", &[]), &other_aud, mask, None).is_none());
    }

    #[test]
    fn unknown_operations_and_empty_lists_are_refused() {
        assert!(ask("/a", &["fly"], "/id-mn").mask().is_err());
        assert!(ask("/a", &[], "/id-mn").mask().is_err());
    }
}
