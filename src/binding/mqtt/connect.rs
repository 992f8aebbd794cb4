//! CONNECT binds a session to one originator (TS-0010 §6.3).
//!
//! In: the client's CONNECT and the identity of its verified TLS client certificate, if any.
//! Out: the originator every request of the session must come from, or why none can be bound.
//! Claims: a client id `A::<AE-ID>` binds `<AE-ID>`, `C::<CSE-ID>` binds `/<CSE-ID>`
//! (SP-relative form); a non-empty username binds itself; the certificate's CN binds itself.
//! Any other client id claims nothing. At least one claim is needed, and all present must agree.

use rumqttc::mqttbytes::v4::Connect;

/// Why no originator can be bound: the identity stage's [`ClaimError`].
pub use crate::guard::ClaimError as BindError;

/// The originator the session is bound to.
pub fn originator(connect: &Connect, tls_identity: Option<&str>) -> Result<String, BindError> {
    let mut claims: Vec<(&'static str, String)> = Vec::new();
    if let Some(id) = client_id_claim(&connect.client_id)? {
        claims.push(("client id", id));
    }
    if let Some(login) = connect.login.as_ref().filter(|l| !l.username.is_empty()) {
        claims.push(("username", login.username.clone()));
    }
    if let Some(identity) = tls_identity {
        claims.push(("certificate", identity.to_owned()));
    }
    let (_, first) = claims.first().ok_or(BindError::NoClaim)?;
    if claims.iter().all(|(_, id)| id == first) {
        Ok(first.clone())
    } else {
        Err(BindError::Disagree(claims))
    }
}

fn client_id_claim(client_id: &str) -> Result<Option<String>, BindError> {
    let (id, cse) = if let Some(id) = client_id.strip_prefix("A::") {
        (id, false)
    } else if let Some(id) = client_id.strip_prefix("C::") {
        (id.strip_prefix('/').unwrap_or(id), true)
    } else {
        return Ok(None);
    };
    if id.is_empty() {
        return Err(BindError::EmptyId(client_id.to_owned()));
    }
    Ok(Some(if cse { format!("/{id}") } else { id.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(client_id: &str, username: Option<&str>) -> Connect {
        let mut c = Connect::new(client_id);
        if let Some(u) = username {
            c.set_login(u, "pw");
        }
        c
    }

    #[test]
    fn each_claim_binds_alone() {
        assert_eq!(originator(&connect("A::Cm", None), None).unwrap(), "Cm");
        assert_eq!(
            originator(&connect("C::id-mn", None), None).unwrap(),
            "/id-mn"
        );
        assert_eq!(
            originator(&connect("mosq-1", Some("Cm")), None).unwrap(),
            "Cm"
        );
        assert_eq!(
            originator(&connect("mosq-1", None), Some("Cm")).unwrap(),
            "Cm"
        );
    }

    #[test]
    fn claims_must_agree_and_one_is_needed() {
        assert_eq!(
            originator(&connect("A::Cm", Some("Cm")), Some("Cm")).unwrap(),
            "Cm"
        );
        assert!(matches!(
            originator(&connect("A::Cm", Some("Cx")), None),
            Err(BindError::Disagree(_))
        ));
        assert!(matches!(
            originator(&connect("A::Cm", None), Some("Cx")),
            Err(BindError::Disagree(_))
        ));
        assert_eq!(
            originator(&connect("mosq-1", None), None),
            Err(BindError::NoClaim)
        );
        assert!(matches!(
            originator(&connect("A::", None), None),
            Err(BindError::EmptyId(_))
        ));
    }
}
