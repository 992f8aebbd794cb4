//! Maps a dotted key path (`http.listen`, `nodes[2].kind`) to a line and column of the TOML
//! source, so validation errors point at what the operator wrote.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

use crate::location::line_col;

/// Location of the value at `path`, or of the nearest enclosing item that exists.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let doc = ImDocument::parse(text).ok()?;
    let mut cursor = Cursor::Item(doc.as_item());
    let mut best = None;
    for segment in path.split('.') {
        let (key, index) = split_index(segment);
        let Some(next) = cursor.child(key).and_then(|c| match index {
            Some(i) => c.element(i),
            None => Some(c),
        }) else {
            break;
        };
        cursor = next;
        best = cursor.span().or(best);
    }
    best.map(|span| line_col(text, span.start))
}

#[derive(Clone, Copy)]
enum Cursor<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Cursor<'a> {
    fn child(self, key: &str) -> Option<Cursor<'a>> {
        match self {
            Cursor::Item(item) => item.as_table_like()?.get(key).map(Cursor::Item),
            Cursor::Table(table) => table.get(key).map(Cursor::Item),
            Cursor::Value(value) => value.as_inline_table()?.get(key).map(Cursor::Value),
        }
    }

    fn element(self, index: usize) -> Option<Cursor<'a>> {
        let array = match self {
            Cursor::Item(Item::ArrayOfTables(tables)) => {
                return tables.get(index).map(Cursor::Table)
            }
            Cursor::Item(Item::Value(value)) | Cursor::Value(value) => value.as_array()?,
            _ => return None,
        };
        array.get(index).map(Cursor::Value)
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Cursor::Item(item) => item.span(),
            Cursor::Table(table) => table.span(),
            Cursor::Value(value) => value.span(),
        }
    }
}

fn split_index(segment: &str) -> (&str, Option<usize>) {
    match segment.split_once('[') {
        Some((key, rest)) => (key, rest.trim_end_matches(']').parse().ok()),
        None => (segment, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[gateway]\ncse_id = \"x\"\n\n[[nodes]]\nid = \"a\"\n\n[[nodes]]\nid = \"b\"\ngroups = [\"g\", \"\"]\n";

    #[test]
    fn top_level_value_is_found_on_its_line() {
        assert_eq!(locate(DOC, "gateway.cse_id"), Some((2, 10)));
    }

    #[test]
    fn element_of_array_of_tables_is_found() {
        assert_eq!(locate(DOC, "nodes[1].id"), Some((8, 6)));
        assert_eq!(locate(DOC, "nodes[1].groups[1]").map(|l| l.0), Some(9));
    }

    #[test]
    fn missing_key_falls_back_to_its_table() {
        assert_eq!(locate(DOC, "gateway.nope").map(|l| l.0), Some(1));
    }
}
