//! Replies to Lua values (what `redis.call` returns) and Lua values to replies (what a script
//! returns), by Redis 7.0's rules for RESP2 and RESP3 (`redis.setresp(3)`).

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::cmd::zsets::format_score;
use crate::resp::Reply;

/// Deepest table nesting a script may return.
const MAX_DEPTH: usize = 1000;

/// The error table `redis.pcall` returns and `redis.call` raises: `{err = "CODE message"}`
/// (`text` starts with its code).
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", text.trim_end_matches(['\r', '\n']))?;
    Ok(Value::Table(t))
}

/// A command's reply as `redis.call` gives it to the script.
pub fn to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    let single = |field: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(field, v)?;
        Ok(Value::Table(t))
    };
    let string = |b: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(b)?)) };
    Ok(match reply {
        Reply::Ok => single("ok", string(b"OK")?)?,
        Reply::Status(s) => single("ok", string(s.as_bytes())?)?,
        Reply::Error(text) => error_table(lua, text)?,
        Reply::Int(n) => Value::Number(*n as f64),
        Reply::Bulk(b) => string(b)?,
        Reply::Nil | Reply::NilArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Several(items) if !resp3 => {
            sequence(lua, items.iter().map(|r| to_lua(lua, r, resp3)))?
        }
        Reply::Array(items) | Reply::Push(items) | Reply::Several(items) => {
            sequence(lua, items.iter().map(|r| to_lua(lua, r, resp3)))?
        }
        Reply::Set(items) => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(to_lua(lua, item, resp3)?, true)?;
            }
            single("set", Value::Table(set))?
        }
        Reply::Map(pairs) | Reply::Keyed(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            single("map", Value::Table(map))?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) if !resp3 => {
            sequence(lua, pairs.iter().flat_map(|(k, v)| [to_lua(lua, k, resp3), to_lua(lua, v, resp3)]))?
        }
        Reply::Pairs(pairs) | Reply::Keyed(pairs) => sequence(
            lua,
            pairs.iter().map(|(k, v)| sequence(lua, [to_lua(lua, k, resp3), to_lua(lua, v, resp3)].into_iter())),
        )?,
        Reply::Map(_) => unreachable!("a map is matched above in both protocols"),
        Reply::Double(text) if resp3 => single("double", Value::Number(text.parse::<f64>().unwrap_or(f64::NAN)))?,
        Reply::Double(text) => string(text.as_bytes())?,
        Reply::Verbatim(text) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(text)?)?;
            single("verbatim_string", Value::Table(v))?
        }
        Reply::Verbatim(text) => string(text.as_bytes())?,
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(*b as i64 as f64),
        Reply::BigNumber(text) if resp3 => single("big_number", string(text.as_bytes())?)?,
        Reply::BigNumber(text) => string(text.as_bytes())?,
    })
}

fn sequence(lua: &Lua, items: impl Iterator<Item = mlua::Result<Value>>) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for (i, item) in items.enumerate() {
        t.raw_set(i + 1, item?)?;
    }
    Ok(Value::Table(t))
}

/// A script's return value as the reply to its caller. `resp3`: the script chose RESP3
/// (booleans are then booleans, not 1 and nil).
pub fn from_lua(value: &Value, resp3: bool) -> Reply {
    from_lua_at(value, resp3, 0)
}

fn from_lua_at(value: &Value, resp3: bool, depth: usize) -> Reply {
    if depth > MAX_DEPTH {
        return Reply::err("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(n) => Reply::Int(*n),
        Value::Number(n) => Reply::Int(*n as i64),
        Value::Table(t) => table_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn table_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        return Reply::Error(String::from_utf8_lossy(&e.as_bytes()).into_owned());
    }
    if let Value::String(s) = field("ok") {
        return Reply::Status(String::from_utf8_lossy(&s.as_bytes()).into_owned());
    }
    match field("double") {
        Value::Number(n) => return Reply::Double(format_score(n)),
        Value::Integer(n) => return Reply::Double(format_score(n as f64)),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        return Reply::BigNumber(String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " "));
    }
    if let Value::Table(v) = field("verbatim_string") {
        if let (Ok(Value::String(_)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            return Reply::Verbatim(String::from_utf8_lossy(&s.as_bytes()).into_owned());
        }
    }
    if let Value::Table(m) = field("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| (from_lua_at(&k, resp3, depth + 1), from_lua_at(&v, resp3, depth + 1)))
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let items =
            s.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| from_lua_at(&k, resp3, depth + 1)).collect();
        return Reply::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(from_lua_at(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(items)
}
