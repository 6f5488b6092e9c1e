//! A small JSON writer: the CLI prints flat objects of numbers, strings, booleans and
//! lists, so a string escaper and an object builder are all it needs.

use std::fmt::Write as _;

/// Appends `s` to `out` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object being built, field by field, in insertion order.
#[derive(Default)]
pub struct Object {
    body: String,
}

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object::default()
    }

    fn key(&mut self, key: &str) -> &mut String {
        if !self.body.is_empty() {
            self.body.push(',');
        }
        push_str(&mut self.body, key);
        self.body.push(':');
        &mut self.body
    }

    /// Adds a string field.
    pub fn str(mut self, key: &str, value: &str) -> Object {
        push_str(self.key(key), value);
        self
    }

    /// Adds an integer field.
    pub fn int(mut self, key: &str, value: impl Into<i128>) -> Object {
        let _ = write!(self.key(key), "{}", value.into());
        self
    }

    /// Adds a number field with a fraction (finite values only; others become `null`).
    pub fn num(mut self, key: &str, value: f64) -> Object {
        let out = self.key(key);
        if value.is_finite() {
            let _ = write!(out, "{value}");
        } else {
            out.push_str("null");
        }
        self
    }

    /// Adds a boolean field.
    pub fn bool(mut self, key: &str, value: bool) -> Object {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds an integer field, or `null` for `None`.
    pub fn opt_int(self, key: &str, value: Option<impl Into<i128>>) -> Object {
        match value {
            Some(v) => self.int(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// Adds a list of strings.
    pub fn strs(mut self, key: &str, values: &[impl AsRef<str>]) -> Object {
        let out = self.key(key);
        out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, v.as_ref());
        }
        out.push(']');
        self
    }

    /// Adds a nested object.
    pub fn obj(self, key: &str, value: Object) -> Object {
        let rendered = value.finish();
        self.raw(key, &rendered)
    }

    /// Adds a list of objects.
    pub fn objs(self, key: &str, values: Vec<Object>) -> Object {
        let items: Vec<String> = values.into_iter().map(Object::finish).collect();
        self.raw(key, &format!("[{}]", items.join(",")))
    }

    fn raw(mut self, key: &str, json: &str) -> Object {
        self.key(key).push_str(json);
        self
    }

    /// The object's text, on one line.
    pub fn finish(self) -> String {
        format!("{{{}}}", self.body)
    }
}
