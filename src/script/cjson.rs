//! The `cjson` library Redis loads (lua-cjson 2.1): `cjson.encode`, `cjson.decode` and
//! `cjson.null`, with lua-cjson's output (numbers as `%.14g`, `/` escaped, an empty table as
//! `{}`) and errors. The configuration functions (`encode_max_depth`, `decode_max_depth`,
//! `encode_invalid_numbers`, `encode_number_precision`) work, but only until the end of the
//! script: every run starts from the defaults (in Redis they outlive the script, which would
//! make replicas that ran different scripts on a VM differ).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// Deepest nesting encoded or decoded by default.
const MAX_DEPTH: usize = 1000;

/// The settings of the run in progress.
#[derive(Debug, Clone, Copy)]
struct Config {
    encode_max_depth: usize,
    decode_max_depth: usize,
    /// NaN and infinities: refused (false) or printed (true).
    encode_invalid_numbers: bool,
    encode_number_precision: u8,
}

const DEFAULTS: Config = Config {
    encode_max_depth: MAX_DEPTH,
    decode_max_depth: MAX_DEPTH,
    encode_invalid_numbers: false,
    encode_number_precision: 14,
};

thread_local! {
    static CONFIG: std::cell::Cell<Config> = const { std::cell::Cell::new(DEFAULTS) };
}

fn config() -> Config {
    CONFIG.get()
}

/// Back to the defaults (before every run).
pub fn reset() {
    CONFIG.set(DEFAULTS);
}

/// An optional whole-number argument of a setting.
fn setting_arg(args: &MultiValue, name: &str, min: i64, max: i64) -> mlua::Result<Option<i64>> {
    match args.front() {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Integer(n)) if (min..=max).contains(n) => Ok(Some(*n)),
        Some(Value::Number(n)) if n.fract() == 0.0 && (min as f64..=max as f64).contains(n) => Ok(Some(*n as i64)),
        _ => {
            Err(mlua::Error::runtime(format!("bad argument #1 to '{name}' (expected integer between {min} and {max})")))
        }
    }
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The library table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::runtime("bad argument #1 to 'encode' (expected 1 argument)"));
            }
            let mut out = Vec::new();
            encode(&args[0], &mut out, 0).map_err(mlua::Error::runtime)?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            let text = match args.front() {
                Some(Value::String(s)) if args.len() == 1 => s.as_bytes().to_vec(),
                Some(Value::Integer(n)) if args.len() == 1 => n.to_string().into_bytes(),
                Some(Value::Number(n)) if args.len() == 1 => number_text(*n).into_bytes(),
                _ => return Err(mlua::Error::runtime("bad argument #1 to 'decode' (expected 1 argument)")),
            };
            let mut p = Parser { lua, s: &text, i: 0 };
            p.skip_ws();
            let v = p.value(0)?;
            p.skip_ws();
            if p.i < text.len() {
                return Err(p.error("the end", "invalid token"));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    t.raw_set(
        "encode_max_depth",
        lua.create_function(|_, args: MultiValue| {
            if let Some(n) = setting_arg(&args, "encode_max_depth", 1, i32::MAX as i64)? {
                CONFIG.set(Config { encode_max_depth: n as usize, ..config() });
            }
            Ok(config().encode_max_depth)
        })?,
    )?;
    t.raw_set(
        "decode_max_depth",
        lua.create_function(|_, args: MultiValue| {
            if let Some(n) = setting_arg(&args, "decode_max_depth", 1, i32::MAX as i64)? {
                CONFIG.set(Config { decode_max_depth: n as usize, ..config() });
            }
            Ok(config().decode_max_depth)
        })?,
    )?;
    t.raw_set(
        "encode_number_precision",
        lua.create_function(|_, args: MultiValue| {
            if let Some(n) = setting_arg(&args, "encode_number_precision", 1, 14)? {
                CONFIG.set(Config { encode_number_precision: n as u8, ..config() });
            }
            Ok(config().encode_number_precision)
        })?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(|_, args: MultiValue| {
            let on = match args.front() {
                None | Some(Value::Nil) => config().encode_invalid_numbers,
                Some(Value::Boolean(b)) => *b,
                Some(Value::String(s)) if s.as_bytes().eq_ignore_ascii_case(b"on") => true,
                Some(Value::String(s)) if s.as_bytes().eq_ignore_ascii_case(b"off") => false,
                Some(_) => {
                    return Err(mlua::Error::runtime("bad argument #1 to 'encode_invalid_numbers' (invalid option)"))
                }
            };
            CONFIG.set(Config { encode_invalid_numbers: on, ..config() });
            Ok(on)
        })?,
    )?;
    let fixed =
        |answer: Vec<Value>| lua.create_function(move |_, _: MultiValue| Ok(MultiValue::from_iter(answer.clone())));
    t.raw_set("encode_sparse_array", fixed(vec![Value::Boolean(false), Value::Integer(2), Value::Integer(10)])?)?;
    t.raw_set("encode_keep_buffer", fixed(vec![Value::Boolean(true)])?)?;
    t.raw_set("decode_invalid_numbers", fixed(vec![Value::Boolean(true)])?)?;
    Ok(t)
}

/// A number as lua-cjson prints it (`%.14g`).
fn number_text(n: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is 64 bytes and snprintf writes at most that, NUL included.
    let precision = config().encode_number_precision as std::ffi::c_int;
    // SAFETY: as above; `%.*g` takes the precision as an int argument.
    let len = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.*g".as_ptr(), precision, n) };
    String::from_utf8_lossy(&buf[..(len.max(0) as usize).min(63)]).into_owned()
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(number_text(*n as f64).as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() && !config().encode_invalid_numbers {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
            out.extend_from_slice(number_text(*n).as_bytes())
        }
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => {
            // (At most MAX_DEPTH whatever the setting: encoding recurses on the thread's stack.)
            if depth >= config().encode_max_depth.min(MAX_DEPTH) {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth + 1));
            }
            match array_length(t)? {
                Some(len) => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(&t.raw_get::<Value>(i).map_err(|e| e.to_string())?, out, depth + 1)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let (k, v) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => string(&s.as_bytes(), out),
                            Value::Integer(n) => string(number_text(*n as f64).as_bytes(), out),
                            Value::Number(n) => string(number_text(*n).as_bytes(), out),
                            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                        }
                        out.push(b':');
                        encode(&v, out, depth + 1)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

/// The length of `t` if it encodes as an array (every key a positive whole number, not too
/// sparse), `None` for an object (an empty table is an object, as lua-cjson's default).
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n != n.floor() {
            return Ok(None);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if items == 0 {
        return Ok(None);
    }
    if max > 10 && max > items * 2 {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

struct Parser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str, found: &str) -> mlua::Error {
        mlua::Error::runtime(format!("Expected {expected} but found {found} at character {}", self.i + 1))
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> mlua::Result<Value> {
        match self.s.get(self.i) {
            None => Err(self.error("value", "T_END")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.lua.create_string(self.string()?)?)),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Boolean(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(null())
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            Some(_) => Err(self.error("value", "invalid token")),
        }
    }

    fn nested(&self, depth: usize) -> mlua::Result<()> {
        if depth >= config().decode_max_depth.min(MAX_DEPTH) {
            return Err(mlua::Error::runtime(format!(
                "Found too many nested data structures ({}) at character {}",
                depth + 1,
                self.i + 1
            )));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> mlua::Result<Value> {
        self.nested(depth)?;
        self.i += 1;
        let t = self.lua.create_table()?;
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.skip_ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.error("object key string", "invalid token"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.error("colon", "invalid token"));
            }
            self.i += 1;
            self.skip_ws();
            let v = self.value(depth + 1)?;
            t.raw_set(self.lua.create_string(key)?, v)?;
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.error("comma or object end", "invalid token")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> mlua::Result<Value> {
        self.nested(depth)?;
        self.i += 1;
        let t = self.lua.create_table()?;
        self.skip_ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Table(t));
        }
        let mut n = 1;
        loop {
            self.skip_ws();
            let v = self.value(depth + 1)?;
            t.raw_set(n, v)?;
            n += 1;
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.error("comma or array end", "invalid token")),
            }
        }
    }

    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.i;
        while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => Ok(Value::Number(n)),
            Err(_) => {
                self.i = start;
                Err(self.error("value", "invalid number"))
            }
        }
    }

    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.error("string end", "T_END"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.error("string end", "T_END"));
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let low = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3ff);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.error("value", "invalid escape code")),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> mlua::Result<u32> {
        let digits =
            self.s.get(self.i..self.i + 4).ok_or_else(|| self.error("value", "invalid unicode escape code"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.error("value", "invalid unicode escape code"))?;
        let cp = u32::from_str_radix(text, 16).map_err(|_| self.error("value", "invalid unicode escape code"))?;
        self.i += 4;
        Ok(cp)
    }
}
