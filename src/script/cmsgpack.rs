//! The `cmsgpack` library Redis loads (lua-cmsgpack 0.4): `pack`, `unpack`, `unpack_one` and
//! `unpack_limit`, with lua-cmsgpack's choices (whole numbers as the smallest integer type, a
//! float32 when it holds the value exactly, a table as an array when its keys are 1..n, nesting
//! past 16 levels packed as nil) and errors.

use bytes::BufMut;
use mlua::{Lua, MultiValue, Table, Value};

/// Deeper tables are packed as nil (lua-cmsgpack's LUACMSGPACK_MAX_NESTING).
const MAX_NESTING: usize = 16;
/// Deepest nesting unpacked (the decoder recurses on the thread's stack).
const MAX_DECODE_DEPTH: usize = 1000;

/// The library table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(mlua::Error::runtime("bad argument #0 to 'pack' (MessagePack pack needs input.)"));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(v, &mut out, 0)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::LuaString| {
            let bytes = s.as_bytes();
            let mut d = Decoder { lua, s: &bytes, i: 0, depth: 0 };
            let mut values = Vec::new();
            while d.i < bytes.len() {
                values.push(d.value()?);
            }
            Ok(MultiValue::from_iter(values))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (mlua::LuaString, Option<i64>)| {
            unpack_limit(lua, &s.as_bytes(), 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, (s, limit, offset): (mlua::LuaString, i64, Option<i64>)| {
            unpack_limit(lua, &s.as_bytes(), limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo; 2014 Matt Stancliff")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// `unpack_limit(s, limit, offset)`: the offset after what was read (-1 at the end), then up
/// to `limit` values (0: all).
fn unpack_limit(lua: &Lua, s: &[u8], limit: i64, offset: Option<i64>) -> mlua::Result<MultiValue> {
    let offset = offset.unwrap_or(0);
    if offset < 0 || limit < 0 {
        return Err(mlua::Error::runtime(format!(
            "Invalid request to unpack with offset of {offset} and limit of {limit}."
        )));
    }
    if offset as usize > s.len() {
        return Err(mlua::Error::runtime(format!("Start offset {offset} greater than input length {}.", s.len())));
    }
    let mut d = Decoder { lua, s, i: offset as usize, depth: 0 };
    let mut values = Vec::new();
    while d.i < s.len() && (limit == 0 || (values.len() as i64) < limit) {
        values.push(d.value()?);
    }
    let next = if d.i >= s.len() { -1 } else { d.i as i64 };
    let mut out = vec![Value::Integer(next)];
    out.extend(values);
    Ok(MultiValue::from_iter(out))
}

fn encode(v: &Value, out: &mut Vec<u8>, level: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_number(*n as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::String(s) => {
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.push(0xd9);
                out.push(len as u8);
            } else if len <= 0xffff {
                out.push(0xda);
                out.put_u16(len as u16);
            } else {
                out.push(0xdb);
                out.put_u32(len as u32);
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if level < MAX_NESTING => encode_table(t, out, level + 1)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && n == n.trunc() && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        encode_int(n as i64, out);
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.put_f32(n as f32);
    } else {
        out.push(0xcb);
        out.put_f64(n);
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => {
                out.push(0xcc);
                out.push(n as u8);
            }
            0x100..=0xffff => {
                out.push(0xcd);
                out.put_u16(n as u16);
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.put_u32(n as u32);
            }
            _ => {
                out.push(0xcf);
                out.put_u64(n as u64);
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.push(0xd0);
        out.push(n as i8 as u8);
    } else if n >= -32768 {
        out.push(0xd1);
        out.put_i16(n as i16);
    } else if n >= -(1 << 31) {
        out.push(0xd2);
        out.put_i32(n as i32);
    } else {
        out.push(0xd3);
        out.put_i64(n);
    }
}

fn encode_table(t: &Table, out: &mut Vec<u8>, level: usize) -> mlua::Result<()> {
    // An array when every key is a positive whole number and they are 1..n.
    let (mut count, mut max, mut array) = (0usize, 0f64, true);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => {
                array = false;
                break;
            }
        };
        if n <= 0.0 || n != n.floor() {
            array = false;
            break;
        }
        max = max.max(n);
        count += 1;
    }
    if array && max as usize == count {
        header(out, count, 0x90, 0xdc, 0xdd);
        for i in 1..=count {
            encode(&t.raw_get::<Value>(i)?, out, level)?;
        }
    } else {
        // Counted first, then encoded pair by pair: each value held from Rust takes a slot of
        // mlua's reference stack, which a big table would exhaust.
        let mut n = 0;
        for pair in t.clone().pairs::<Value, Value>() {
            pair?;
            n += 1;
        }
        header(out, n, 0x80, 0xde, 0xdf);
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, v) = pair?;
            encode(&k, out, level)?;
            encode(&v, out, level)?;
        }
    }
    Ok(())
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, m16: u8, m32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(m16);
        out.put_u16(n as u16);
    } else {
        out.push(m32);
        out.put_u32(n as u32);
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        if self.s.len() - self.i < n {
            return Err(mlua::Error::runtime("Missing bytes in input."));
        }
        let b = &self.s[self.i..self.i + n];
        self.i += n;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn int(&mut self, n: usize) -> mlua::Result<i64> {
        let u = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((u << shift) as i64) >> shift)
    }

    fn string(&mut self, n: usize) -> mlua::Result<Value> {
        let b = self.take(n)?.to_vec();
        Ok(Value::String(self.lua.create_string(b)?))
    }

    fn array(&mut self, n: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for i in 1..=n {
            t.raw_set(i, self.value()?)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for _ in 0..n {
            let k = self.value()?;
            let v = self.value()?;
            if k != Value::Nil {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }

    fn value(&mut self) -> mlua::Result<Value> {
        if self.depth >= MAX_DECODE_DEPTH {
            return Err(mlua::Error::runtime("Bad data format in input."));
        }
        self.depth += 1;
        let v = self.value_here();
        self.depth -= 1;
        v
    }

    fn value_here(&mut self) -> mlua::Result<Value> {
        let c = self.take(1)?[0];
        let number = |n: f64| Ok(Value::Number(n));
        match c {
            0x00..=0x7f => number(c as f64),
            0x80..=0x8f => self.map((c & 0x0f) as usize),
            0x90..=0x9f => self.array((c & 0x0f) as usize),
            0xa0..=0xbf => self.string((c & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(n)
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.string(n)
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.string(n)
            }
            0xca => number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => number(f64::from_bits(self.uint(8)?)),
            0xcc => number(self.uint(1)? as f64),
            0xcd => number(self.uint(2)? as f64),
            0xce => number(self.uint(4)? as f64),
            0xcf => number(self.uint(8)? as f64),
            0xd0 => number(self.int(1)? as f64),
            0xd1 => number(self.int(2)? as f64),
            0xd2 => number(self.int(4)? as f64),
            0xd3 => number(self.int(8)? as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(n)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(n)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n)
            }
            0xe0..=0xff => number(c as i8 as f64),
            _ => Err(mlua::Error::runtime("Bad data format in input.")),
        }
    }
}
