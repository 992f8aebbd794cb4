//! oneM2M response primitives the MQTT binding answers itself, from an [`Answer`]: a denial
//! (4103) or a malformed request (4000), with `rqi`, `to` (the request's originator), `fr` (the
//! gateway's CSE-ID), `rvi` echoed where the request had them, and `pc` `{"m2m:dbg": …}`
//! naming the class only, with `tqf` beside it for a token denial where configured (the same
//! content as the HTTP binding's body: see [`crate::record::Answer`]).
//!
//! Serialised as the request was (JSON, or CBOR for `/cbor` topics), published QoS 0 on the
//! request's response topic.

use crate::record::Answer;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::topic::Format;

/// What the answer echoes from the request, as far as it could be read.
#[derive(Clone, Debug, Default)]
pub struct Echo {
    pub rqi: Option<String>,
    pub fr: Option<String>,
    pub rvi: Option<String>,
}

impl Echo {
    /// The echoed fields of a decoded (or partly decoded) request object.
    pub fn of(request: &Value) -> Self {
        let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_owned);
        Echo {
            rqi: text("rqi"),
            fr: text("fr"),
            rvi: text("rvi"),
        }
    }
}

/// A response primitive, serialised in `format`.
pub fn response(echo: &Echo, answer: &Answer, gateway: &str, format: Format) -> Bytes {
    let mut primitive = Map::new();
    primitive.insert("rsc".into(), json!(answer.rsc as u16));
    let fields = [("rqi", &echo.rqi), ("to", &echo.fr), ("rvi", &echo.rvi)];
    for (key, value) in fields {
        if let Some(value) = value {
            primitive.insert(key.into(), json!(value));
        }
    }
    primitive.insert("fr".into(), json!(gateway));
    primitive.insert("pc".into(), answer.content());
    let primitive = Value::Object(primitive);
    match format {
        Format::Json => Bytes::from(primitive.to_string()),
        Format::Cbor => {
            let mut out = Vec::new();
            // Writing a JSON value into a Vec cannot fail; an empty answer if it ever did.
            let _ = ciborium::into_writer(&primitive, &mut out);
            Bytes::from(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitive::Rsc;

    fn answer(rsc: Rsc, message: &'static str) -> Answer {
        Answer {
            rsc,
            message: message.into(),
            tqf: None,
        }
    }

    #[test]
    fn denial_names_the_class_and_echoes_the_request() {
        let echo = Echo::of(&json!({"rqi": "r1", "fr": "Cm", "rvi": "4", "op": 2}));
        let body = response(
            &echo,
            &answer(Rsc::OriginatorHasNoPrivilege, "access denied by policy"),
            "/id-in",
            Format::Json,
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"rsc": 4103, "rqi": "r1", "to": "Cm", "rvi": "4", "fr": "/id-in",
                   "pc": {"m2m:dbg": "access denied by policy"}})
        );
    }

    #[test]
    fn cbor_answer_decodes_to_the_same_primitive() {
        let echo = Echo {
            rqi: Some("r2".into()),
            ..Echo::default()
        };
        let body = response(
            &echo,
            &answer(Rsc::BadRequest, "bad"),
            "/id-in",
            Format::Cbor,
        );
        let v: Value = ciborium::from_reader(&body[..]).unwrap();
        assert_eq!(v["rsc"], 4000);
        assert_eq!(v["rqi"], "r2");
    }
}
