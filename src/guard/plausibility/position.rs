//! Reading a position out of request content with JSON pointers (RFC 6901).
//!
//! In: the content parsed as JSON and two pointers from the rule. Out: a [`Point`], or why it
//! cannot be read. oneM2M devices often put their data in `con` as a string holding JSON
//! (`"con": "{\"lat\": 52.5}"`): when the pointer still has tokens left and reaches a string,
//! that string is parsed as JSON and the walk continues inside it (at most
//! [`MAX_EMBEDDED`] times per pointer). The value pointed at must be a JSON number, or a
//! string holding exactly one JSON number (`"52.5"`).

use serde_json::Value;

use super::geo::Point;

/// How many JSON-in-a-string levels one pointer may descend through.
pub const MAX_EMBEDDED: usize = 2;

/// A parsed JSON pointer: its reference tokens, unescaped (`~1` → `/`, then `~0` → `~`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPointer {
    text: String,
    tokens: Vec<String>,
}

impl JsonPointer {
    /// A pointer to a value inside the document: `/`-separated tokens, `~0` for `~` and
    /// `~1` for `/`. The whole-document pointer `""` is refused: a position is never the
    /// document itself.
    pub fn parse(text: &str) -> Result<JsonPointer, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "{text:?} is not a JSON pointer (expected \"/\"-separated keys, e.g. \"/m2m:cin/con/lat\")"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|raw| {
                let mut out = String::with_capacity(raw.len());
                let mut chars = raw.chars();
                while let Some(c) = chars.next() {
                    match (c, c == '~') {
                        (_, false) => out.push(c),
                        (_, true) => match chars.next() {
                            Some('0') => out.push('~'),
                            Some('1') => out.push('/'),
                            _ => {
                                return Err(format!(
                                    "{text:?}: \"~\" must be followed by 0 or 1 (\"~0\" is ~, \"~1\" is /)"
                                ))
                            }
                        },
                    }
                }
                Ok(out)
            })
            .collect::<Result<_, _>>()?;
        Ok(JsonPointer {
            text: text.to_owned(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The number this pointer designates in `doc`.
    pub fn number(&self, doc: &Value) -> Result<f64, String> {
        resolve(doc, &self.tokens, 0).map_err(|why| format!("{}: {why}", self.text))
    }
}

fn resolve(doc: &Value, tokens: &[String], embedded: usize) -> Result<f64, String> {
    let mut current = doc;
    for (i, token) in tokens.iter().enumerate() {
        if let Value::String(s) = current {
            if embedded == MAX_EMBEDDED {
                return Err("JSON nested in strings too deeply".into());
            }
            let inner: Value =
                serde_json::from_str(s).map_err(|_| "reached a string that is not JSON")?;
            return resolve(&inner, tokens.get(i..).unwrap_or_default(), embedded + 1);
        }
        current = step(current, token).ok_or_else(|| format!("nothing at {token:?}"))?;
    }
    match current {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Number(n)) => n.as_f64(),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| "not a number".into())
}

fn step<'a>(value: &'a Value, token: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(token),
        Value::Array(items) => {
            let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
            if !canonical || !token.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            items.get(token.parse::<usize>().ok()?)
        }
        _ => None,
    }
}

/// Where a rule finds latitude and longitude in the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionSource {
    pub latitude: JsonPointer,
    pub longitude: JsonPointer,
}

impl PositionSource {
    pub fn read(&self, doc: &Value) -> Result<Point, String> {
        let lat = self.latitude.number(doc)?;
        let lon = self.longitude.number(doc)?;
        // The values themselves stay out of the message: it is logged, and content is not.
        Point::new(lat, lon)
            .ok_or_else(|| "position out of range (latitude ±90, longitude ±180)".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ptr(s: &str) -> JsonPointer {
        JsonPointer::parse(s).unwrap()
    }

    #[test]
    fn escapes_follow_rfc_6901() {
        let doc = json!({"a/b": 1, "m~n": 2, "~1": 3, "": {"": 4}, "arr": [10, 20]});
        assert_eq!(ptr("/a~1b").number(&doc), Ok(1.0));
        assert_eq!(ptr("/m~0n").number(&doc), Ok(2.0));
        assert_eq!(ptr("/~01").number(&doc), Ok(3.0), "~01 is the key \"~1\"");
        assert_eq!(ptr("//").number(&doc), Ok(4.0));
        assert_eq!(ptr("/arr/1").number(&doc), Ok(20.0));
        for bad in [
            "/arr/01", "/arr/-", "/arr/2", "/arr/+1", "/missing", "/a~1b/x",
        ] {
            assert!(ptr(bad).number(&doc).is_err(), "{bad}");
        }
        for bad in ["", "a/b", "/a~", "/a~2", "/~x"] {
            assert!(JsonPointer::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn con_holding_json_text_is_descended_into() {
        let doc = json!({"m2m:cin": {"con": "{\"lat\": 52.5, \"lon\": \"13.4\"}"}});
        let pos = PositionSource {
            latitude: ptr("/m2m:cin/con/lat"),
            longitude: ptr("/m2m:cin/con/lon"),
        };
        assert_eq!(
            pos.read(&doc),
            Point::new(52.5, 13.4).ok_or_else(String::new)
        );
        let nested = json!({"con": json!({"x": "{\"lat\": 1}"}).to_string()});
        assert_eq!(ptr("/con/x/lat").number(&nested), Ok(1.0));
        let too_deep = json!({"a": json!({"b": json!({"c": 1}).to_string()}).to_string()});
        let deeper = json!({"z": too_deep.to_string()});
        assert!(ptr("/z/a/b/c").number(&deeper).is_err());
    }

    #[test]
    fn values_that_are_not_numbers_cannot_be_read() {
        let doc = json!({"t": true, "s": "north", "n": null, "o": {}, "x": "1 2", "e": "NaN"});
        for p in ["/t", "/s", "/n", "/o", "/x", "/e", "/s/k"] {
            assert!(ptr(p).number(&doc).is_err(), "{p}");
        }
    }

    proptest::proptest! {
        #[test]
        fn pointer_parser_and_walk_never_panic(text in "\\PC{0,32}", doc in "[\\[\\]{}\":,0-9a-z~/ ]{0,64}") {
            if let (Ok(p), Ok(value)) = (JsonPointer::parse(&text), serde_json::from_str::<Value>(&doc)) {
                let _ = p.number(&value);
            }
        }
    }

    #[test]
    fn out_of_range_coordinates_cannot_be_read() {
        let pos = PositionSource {
            latitude: ptr("/lat"),
            longitude: ptr("/lon"),
        };
        assert!(pos.read(&json!({"lat": 91, "lon": 0})).is_err());
        assert!(pos.read(&json!({"lat": 0, "lon": -180.5})).is_err());
        assert!(pos.read(&json!({"lat": -33.9, "lon": 151.2})).is_ok());
    }
}
