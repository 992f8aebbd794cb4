//! Publishers for the crash tests: records through the authority's operator API, fast (one
//! HTTPS call per record, no process per record as the operator CLI takes).

use http::Method;
use serde_json::json;

use super::authority::Setup;

/// A small xorshift generator, seeded at random.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = m2mguard::feed::keys::random32();
        Rng(u64::from_le_bytes(seed[..8].try_into().unwrap()) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Publishes exactly `count` records through the operator API, on nodes `C<task>-<0..ids>`:
/// enrol one that is not there, else suspend, activate, deactivate, regroup or remove it.
pub async fn publish(setup: &Setup, task: usize, ids: u64, count: usize) {
    let operator = setup.operator();
    let mut rng = Rng::new();
    let mut present = vec![false; usize::try_from(ids).unwrap()];
    for _ in 0..count {
        let i = rng.below(ids);
        let id = format!("C{task}-{i}");
        let here = &mut present[usize::try_from(i).unwrap()];
        let (method, path, body) = if !*here {
            *here = true;
            let body = json!({ "id": id, "groups": ["devices"] });
            (Method::POST, "/v1/nodes".to_owned(), Some(body))
        } else {
            match rng.below(10) {
                0..=2 => (Method::POST, format!("/v1/nodes/{id}/suspend"), None),
                3..=5 => (Method::POST, format!("/v1/nodes/{id}/activate"), None),
                6 | 7 => (Method::POST, format!("/v1/nodes/{id}/deactivate"), None),
                8 => {
                    let groups = json!({ "groups": ["devices", format!("g{}", rng.below(5))] });
                    (Method::PUT, format!("/v1/nodes/{id}"), Some(groups))
                }
                _ => {
                    *here = false;
                    (Method::DELETE, format!("/v1/nodes/{id}"), None)
                }
            }
        };
        let answer = operator.call(method, &path, body.as_ref()).await;
        let answer = answer.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(answer["seq"].as_u64().is_some(), "{path}: {answer}");
    }
}

/// Enrols nodes `S<task>-<0..n>`, one record each.
pub async fn enrol(setup: &Setup, task: usize, n: usize) {
    let operator = setup.operator();
    for i in 0..n {
        let body = json!({ "id": format!("S{task}-{i}"), "groups": ["devices"] });
        let answer = operator.call(Method::POST, "/v1/nodes", Some(&body)).await;
        answer.unwrap_or_else(|e| panic!("enrol S{task}-{i}: {e}"));
    }
}
