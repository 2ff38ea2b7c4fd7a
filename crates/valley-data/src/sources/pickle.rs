//! A minimal reader of Python pickles (protocols 2–5) for the values LiveCodeBench stores:
//! strings, numbers, booleans, `None`, lists, tuples and dicts with string keys, read into JSON.
//!
//! Why not shell out to python3: reading a dataset must not depend on an interpreter, and
//! `pickle.loads` on downloaded data executes arbitrary code (its `REDUCE`/`GLOBAL` opcodes call
//! any function) — this reader refuses every opcode that builds objects or calls code. The
//! LiveCodeBench blob is `pickle.dumps(json.dumps(tests))`: one string, which this handles; memo
//! references (`BINGET`) give a copy of the value as it was memoized, which is exact for
//! immutable values.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pickle at byte {offset}: {message}")]
pub struct PickleError {
    /// Where in the stream.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

enum Item {
    Value(Value),
    Mark,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, message: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.err(format!("truncated: {n} more bytes expected")))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            v |= u64::from(*byte) << (8 * i);
        }
        Ok(v)
    }

    fn string(&mut self, len: u64) -> Result<Value, PickleError> {
        let at = self.pos;
        let b = self.take(usize::try_from(len).map_err(|_| self.err("string too long"))?)?;
        std::str::from_utf8(b)
            .map(|s| Value::String(s.to_string()))
            .map_err(|e| PickleError {
                offset: at,
                message: format!("string is not UTF-8: {e}"),
            })
    }
}

/// Reads a pickle into JSON.
///
/// # Errors
/// [`PickleError`] for a truncated stream, an unsupported opcode (anything that builds objects or
/// calls code) or a dict with non-string keys.
pub fn read_pickle(bytes: &[u8]) -> Result<Value, PickleError> {
    let mut r = Reader { bytes, pos: 0 };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u64, Value> = HashMap::new();
    let pop_value = |r: &Reader, stack: &mut Vec<Item>| match stack.pop() {
        Some(Item::Value(v)) => Ok(v),
        _ => Err(r.err("stack underflow")),
    };
    let pop_mark = |r: &Reader, stack: &mut Vec<Item>| -> Result<Vec<Value>, PickleError> {
        let at = stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| r.err("no mark on the stack"))?;
        Ok(stack
            .drain(at..)
            .skip(1)
            .filter_map(|i| match i {
                Item::Value(v) => Some(v),
                Item::Mark => None,
            })
            .collect())
    };
    loop {
        let op = r.take(1)?[0];
        match op {
            0x80 => {
                r.take(1)?; // PROTO n
            }
            0x95 => {
                r.take(8)?; // FRAME length: frames only group bytes
            }
            b'.' => return pop_value(&r, &mut stack),
            0x8c => {
                let n = r.uint(1)?;
                let v = r.string(n)?;
                stack.push(Item::Value(v));
            }
            b'X' => {
                let n = r.uint(4)?;
                let v = r.string(n)?;
                stack.push(Item::Value(v));
            }
            0x8d => {
                let n = r.uint(8)?;
                let v = r.string(n)?;
                stack.push(Item::Value(v));
            }
            0x94 => {
                let top = match stack.last() {
                    Some(Item::Value(v)) => v.clone(),
                    _ => return Err(r.err("MEMOIZE without a value")),
                };
                memo.insert(memo.len() as u64, top);
            }
            b'q' | b'r' => {
                let key = r.uint(if op == b'q' { 1 } else { 4 })?;
                let top = match stack.last() {
                    Some(Item::Value(v)) => v.clone(),
                    _ => return Err(r.err("PUT without a value")),
                };
                memo.insert(key, top);
            }
            b'h' | b'j' => {
                let key = r.uint(if op == b'h' { 1 } else { 4 })?;
                let v = memo
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| r.err(format!("memo {key} is empty")))?;
                stack.push(Item::Value(v));
            }
            b'(' => stack.push(Item::Mark),
            b']' => stack.push(Item::Value(Value::Array(Vec::new()))),
            b')' => stack.push(Item::Value(Value::Array(Vec::new()))),
            b'}' => stack.push(Item::Value(Value::Object(Map::new()))),
            b'a' => {
                let v = pop_value(&r, &mut stack)?;
                match stack.last_mut() {
                    Some(Item::Value(Value::Array(list))) => list.push(v),
                    _ => return Err(r.err("APPEND to a non-list")),
                }
            }
            b'e' => {
                let items = pop_mark(&r, &mut stack)?;
                match stack.last_mut() {
                    Some(Item::Value(Value::Array(list))) => list.extend(items),
                    _ => return Err(r.err("APPENDS to a non-list")),
                }
            }
            b't' => {
                let items = pop_mark(&r, &mut stack)?;
                stack.push(Item::Value(Value::Array(items)));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err(r.err("stack underflow"));
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(pop_value(&r, &mut stack)?);
                }
                items.reverse();
                stack.push(Item::Value(Value::Array(items)));
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = pop_value(&r, &mut stack)?;
                    let k = pop_value(&r, &mut stack)?;
                    vec![k, v]
                } else {
                    pop_mark(&r, &mut stack)?
                };
                let at = r.pos;
                let Some(Item::Value(Value::Object(map))) = stack.last_mut() else {
                    return Err(r.err("SETITEM on a non-dict"));
                };
                for pair in items.chunks(2) {
                    let [Value::String(k), v] = pair else {
                        return Err(PickleError {
                            offset: at,
                            message: "dict keys must be strings".into(),
                        });
                    };
                    map.insert(k.clone(), v.clone());
                }
            }
            b'K' => {
                let v = r.uint(1)?;
                stack.push(Item::Value(Value::from(v)));
            }
            b'M' => {
                let v = r.uint(2)?;
                stack.push(Item::Value(Value::from(v)));
            }
            b'J' => {
                let v = r.uint(4)? as u32 as i32;
                stack.push(Item::Value(Value::from(v)));
            }
            b'G' => {
                let b = r.take(8)?;
                let f = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                stack.push(Item::Value(
                    Number::from_f64(f).map_or(Value::Null, Value::Number),
                ));
            }
            b'N' => stack.push(Item::Value(Value::Null)),
            0x88 => stack.push(Item::Value(Value::Bool(true))),
            0x89 => stack.push(Item::Value(Value::Bool(false))),
            other => {
                r.pos -= 1;
                return Err(r.err(format!(
                    "opcode 0x{other:02x} is not supported (only strings, numbers, lists, tuples and string-keyed dicts are read; nothing that builds objects or calls code)"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps("héllo", protocol=4)` in Python 3.11.
    const HELLO: &[u8] = b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x8c\x06h\xc3\xa9llo\x94.";

    #[test]
    fn reads_a_protocol_4_string() {
        assert_eq!(read_pickle(HELLO).unwrap(), Value::from("héllo"));
    }

    #[test]
    fn refuses_code_and_names_truncation() {
        // `cos.system\n(S'ls'\ntR.` — protocol 0 GLOBAL + REDUCE: never executed, refused.
        let err = read_pickle(b"cos\nsystem\n(S'ls'\ntR.").unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.message.contains("0x63"), "{err}");
        let err = read_pickle(&HELLO[..14]).unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
    }
}
