//! Token permissions (`tkps`, TS-0003 §7.3.2.6; TS-0004 `m2m:tokenPermissions`) → the
//! resources and operations of a [`TokenGrant`].
//!
//! In: the `tkps` claim as JSON — a list of permissions, or `{"pm": [...]}` around one — each
//! `{"ris": [resource ids], "pv": {"acr": [{"acop": <bitmask>, ...}]}}`. Out: resource ids in
//! order without duplicates, and operation names for the bits of every `acop` (1 create,
//! 2 retrieve, 4 update, 8 delete, 16 notify, 32 discover). Anything else in `tkps` — an
//! `acop` outside 1..=63, a non-string resource id, more than the bounds below — refuses the
//! token: permissions we cannot read are never widened or guessed. The policy sees resources
//! and operations as two sets, so a token is only accepted when every resource it names is
//! granted the same operations (then every pair of the two sets is granted); a token that
//! pairs different operations with different resources is refused rather than widened. An
//! access-control rule with `acor` (originators) grants only when the holder is among them.

use serde::Deserialize;
use serde_json::Value;

/// At most this many resource ids and access-control rules in one token.
pub const MAX_ENTRIES: usize = 256;

/// Operation names by `acop` bit, lowest bit first.
const OPERATIONS: [&str; 6] = [
    "create", "retrieve", "update", "delete", "notify", "discover",
];

#[derive(Deserialize)]
#[serde(untagged)]
enum Permissions {
    List(Vec<Permission>),
    Wrapped { pm: Vec<Permission> },
}

#[derive(Deserialize)]
struct Permission {
    #[serde(default)]
    ris: Vec<String>,
    pv: Option<Privileges>,
}

#[derive(Deserialize)]
struct Privileges {
    #[serde(default)]
    acr: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    acop: u64,
    acor: Option<Vec<String>>,
}

/// Resource ids and operation names granted by `tkps`; both empty when there is none.
pub fn permissions(
    tkps: Option<&Value>,
    holder: &str,
) -> Result<(Vec<String>, Vec<String>), String> {
    let Some(tkps) = tkps else {
        return Ok((Vec::new(), Vec::new()));
    };
    let list = match Permissions::deserialize(tkps) {
        Ok(Permissions::List(list) | Permissions::Wrapped { pm: list }) => list,
        Err(_) => return Err("tkps is not a list of token permissions".into()),
    };
    let mut resources: Vec<String> = Vec::new();
    let mut mask: Option<u64> = None;
    let mut rules = 0usize;
    for permission in list {
        let mut this = 0u64;
        for id in permission.ris {
            if id.is_empty() || id.chars().any(char::is_control) {
                return Err("tkps names an empty or unprintable resource id".into());
            }
            if !resources.contains(&id) {
                resources.push(id);
            }
        }
        for rule in permission.pv.map(|pv| pv.acr).unwrap_or_default() {
            if !(1..=63).contains(&rule.acop) {
                return Err(format!("tkps acop {} is not an operation mask", rule.acop));
            }
            rules += 1;
            if rule
                .acor
                .as_ref()
                .is_none_or(|acor| acor.iter().any(|o| o == holder))
            {
                this |= rule.acop;
            }
        }
        if *mask.get_or_insert(this) != this {
            return Err(
                "tkps grants different operations to different resources; refused rather than widened"
                    .into(),
            );
        }
        if resources.len() > MAX_ENTRIES || rules > MAX_ENTRIES {
            return Err(format!("tkps has more than {MAX_ENTRIES} entries"));
        }
    }
    let mask = mask.unwrap_or(0);
    let operations = OPERATIONS
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    Ok((resources, operations))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::permissions;

    #[test]
    fn acop_bits_become_operation_names_and_resources_are_deduplicated() {
        let tkps = json!([
            {"ris": ["/id-in/cse-in/meter", "/id-in/cse-in/lamp"], "pv": {"acr": [{"acop": 2}, {"acop": 1 | 16 | 32, "acor": ["Cx"]}]}},
            {"ris": ["/id-in/cse-in/meter"], "pv": {"acr": [{"acop": 1 | 2 | 16 | 32}]}}
        ]);
        let (resources, operations) = permissions(Some(&tkps), "Cx").unwrap();
        assert_eq!(resources, ["/id-in/cse-in/meter", "/id-in/cse-in/lamp"]);
        assert_eq!(operations, ["create", "retrieve", "notify", "discover"]);
    }

    #[test]
    fn different_operations_for_different_resources_are_refused_not_widened() {
        // Retrieve on A and delete on B must not become {A, B} x {retrieve, delete}.
        let tkps = json!([
            {"ris": ["A"], "pv": {"acr": [{"acop": 2}]}},
            {"ris": ["B"], "pv": {"acr": [{"acop": 8}]}}
        ]);
        let e = permissions(Some(&tkps), "Cx").unwrap_err();
        assert!(e.contains("refused rather than widened"), "{e}");
        // A rule for other originators grants the holder nothing.
        let others =
            json!([{"ris": ["A"], "pv": {"acr": [{"acop": 63, "acor": ["Cother"]}, {"acop": 2}]}}]);
        assert_eq!(permissions(Some(&others), "Cx").unwrap().1, ["retrieve"]);
    }

    #[test]
    fn wrapped_form_reads_the_same() {
        let tkps = json!({"pm": [{"ris": ["r"], "pv": {"acr": [{"acop": 63}]}}]});
        let (_, operations) = permissions(Some(&tkps), "Cx").unwrap();
        assert_eq!(operations.len(), 6);
    }

    #[test]
    fn absent_tkps_grants_nothing() {
        assert_eq!(permissions(None, "Cx").unwrap(), (vec![], vec![]));
    }

    #[test]
    fn unreadable_permissions_refuse_the_token() {
        for bad in [
            json!("all"),
            json!([{"ris": [1]}]),
            json!([{"ris": ["r"], "pv": {"acr": [{"acop": 64}]}}]),
            json!([{"ris": ["r"], "pv": {"acr": [{"acop": 0}]}}]),
            json!([{"ris": ["r"], "pv": {"acr": [{"acop": -1}]}}]),
            json!([{"ris": [""]}]),
        ] {
            assert!(permissions(Some(&bad), "Cx").is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=super::MAX_ENTRIES).map(|i| i.to_string()).collect();
        assert!(permissions(Some(&json!([{"ris": many}])), "Cx").is_err());
    }
}
