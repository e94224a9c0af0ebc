//! The `struct` library Redis loads (Roberto Ierusalimschy's struct 0.2, with Redis's bounds):
//! `struct.pack`, `struct.unpack` and `struct.size` over format strings (`>`/`<`/`=` byte order,
//! `!n` alignment, `b B h H l L T i[n] I[n] f d s c[n] x`).

use mlua::{Lua, MultiValue, Table, Value};

/// Widest integer a format may name (`i32`), as Redis's struct library allows.
const MAX_INT_SIZE: usize = 32;
/// The alignment `!` alone sets.
const MAX_ALIGN: usize = 8;

struct Format<'a> {
    f: &'a [u8],
    i: usize,
    little: bool,
    align: usize,
}

/// One option of a format: the letter and its size (`None` for `c0` and `s`, known from data).
struct Opt {
    letter: u8,
    size: Option<usize>,
}

fn arg_error(n: usize, func: &str, text: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{n} to '{func}' ({text})"))
}

impl Format<'_> {
    fn number(&mut self) -> Option<usize> {
        let start = self.i;
        while self.i < self.f.len() && self.f[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.f[start..self.i]).ok()?.parse().ok()
    }

    /// The next option, after applying the byte-order and alignment ones.
    fn next(&mut self, func: &str) -> mlua::Result<Option<Opt>> {
        while self.i < self.f.len() {
            let c = self.f[self.i];
            self.i += 1;
            let size = match c {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    let a = self.number().unwrap_or(MAX_ALIGN);
                    if !a.is_power_of_two() {
                        return Err(arg_error(1, func, "alignment must be power of 2"));
                    }
                    self.align = a;
                    continue;
                }
                b'x' | b'b' | b'B' => Some(1),
                b'h' | b'H' => Some(2),
                b'l' | b'L' | b'T' | b'd' => Some(8),
                b'f' => Some(4),
                b'i' | b'I' => {
                    let n = self.number().unwrap_or(4);
                    if n > MAX_INT_SIZE {
                        return Err(mlua::Error::runtime(format!(
                            "integral size {n} is larger than limit of {MAX_INT_SIZE}"
                        )));
                    }
                    Some(n)
                }
                b'c' => match self.number().unwrap_or(1) {
                    0 => None,
                    n => Some(n),
                },
                b's' => None,
                other => {
                    return Err(arg_error(1, func, &format!("invalid format option '{}'", other as char)));
                }
            };
            return Ok(Some(Opt { letter: c, size }));
        }
        Ok(None)
    }

    /// Padding before an option of `size` bytes at offset `len`.
    fn padding(&self, opt: &Opt, len: usize) -> usize {
        let Some(size) = opt.size else { return 0 };
        if size <= 1 || opt.letter == b'c' {
            return 0;
        }
        let align = size.min(self.align);
        if !align.is_power_of_two() {
            return 0;
        }
        len.wrapping_neg() & (align - 1)
    }
}

fn number_arg(args: &MultiValue, i: usize, func: &str) -> mlua::Result<f64> {
    match args.get(i) {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| arg_error(i + 1, func, "number expected, got string")),
        other => Err(arg_error(
            i + 1,
            func,
            &format!("number expected, got {}", other.map_or("no value", |v| v.type_name())),
        )),
    }
}

fn string_arg(args: &MultiValue, i: usize, func: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(crate::cmd::zsets::format_score(*n).into_bytes()),
        other => Err(arg_error(
            i + 1,
            func,
            &format!("string expected, got {}", other.map_or("no value", |v| v.type_name())),
        )),
    }
}

fn put_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let mut bytes = vec![0u8; size];
    let mut u = v as u64;
    for b in bytes.iter_mut().take(8) {
        *b = (u & 0xff) as u8;
        u >>= 8;
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_int(data: &[u8], size: usize, little: bool, signed: bool) -> f64 {
    let mut u: u64 = 0;
    let n = size.min(8);
    for k in 0..n {
        let b = if little { data[n - 1 - k] } else { data[size - n + k] };
        u = (u << 8) | b as u64;
    }
    if signed && n < 8 {
        let shift = 64 - 8 * n as u32;
        ((u << shift) as i64 >> shift) as f64
    } else if signed {
        u as i64 as f64
    } else {
        u as f64
    }
}

/// The library table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            let fmt = string_arg(&args, 0, "pack")?;
            let mut f = Format { f: &fmt, i: 0, little: true, align: 1 };
            let mut out = Vec::new();
            let mut arg = 1;
            while let Some(opt) = f.next("pack")? {
                let pad = f.padding(&opt, out.len());
                out.resize(out.len() + pad, 0);
                match opt.letter {
                    b'x' => out.push(0),
                    b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                        let n = number_arg(&args, arg, "pack")?;
                        arg += 1;
                        put_int(&mut out, n as i64, opt.size.unwrap_or(4), f.little);
                    }
                    b'f' | b'd' => {
                        let n = number_arg(&args, arg, "pack")?;
                        arg += 1;
                        let mut bytes = if opt.letter == b'f' {
                            (n as f32).to_le_bytes().to_vec()
                        } else {
                            n.to_le_bytes().to_vec()
                        };
                        if !f.little {
                            bytes.reverse();
                        }
                        out.extend_from_slice(&bytes);
                    }
                    b'c' => {
                        let s = string_arg(&args, arg, "pack")?;
                        let size = opt.size.unwrap_or(s.len());
                        if s.len() < size {
                            return Err(arg_error(arg + 1, "pack", "string too short"));
                        }
                        arg += 1;
                        out.extend_from_slice(&s[..size]);
                    }
                    _ => {
                        // 's': the string and a NUL.
                        let s = string_arg(&args, arg, "pack")?;
                        arg += 1;
                        out.extend_from_slice(&s);
                        out.push(0);
                    }
                }
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let fmt = string_arg(&args, 0, "unpack")?;
            let data = string_arg(&args, 1, "unpack")?;
            let mut pos = match args.get(2) {
                None | Some(Value::Nil) => 0,
                Some(_) => {
                    let init = number_arg(&args, 2, "unpack")?;
                    if init < 1.0 {
                        return Err(arg_error(3, "unpack", "offset must be 1 or greater"));
                    }
                    init as usize - 1
                }
            };
            let mut f = Format { f: &fmt, i: 0, little: true, align: 1 };
            let mut values: Vec<Value> = Vec::new();
            let short = || arg_error(2, "unpack", "data string too short");
            while let Some(opt) = f.next("unpack")? {
                pos = pos.checked_add(f.padding(&opt, pos)).ok_or_else(short)?;
                match opt.letter {
                    b'x' => pos += 1,
                    b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' | b'f' | b'd' => {
                        let size = opt.size.unwrap_or(4);
                        if pos + size > data.len() {
                            return Err(short());
                        }
                        let bytes = &data[pos..pos + size];
                        let v = match opt.letter {
                            b'f' => {
                                let mut b: [u8; 4] = bytes.try_into().expect("4 bytes");
                                if !f.little {
                                    b.reverse();
                                }
                                f32::from_le_bytes(b) as f64
                            }
                            b'd' => {
                                let mut b: [u8; 8] = bytes.try_into().expect("8 bytes");
                                if !f.little {
                                    b.reverse();
                                }
                                f64::from_le_bytes(b)
                            }
                            l => get_int(bytes, size, f.little, l.is_ascii_lowercase()),
                        };
                        values.push(Value::Number(v));
                        pos += size;
                    }
                    b'c' => {
                        let size = match opt.size {
                            Some(n) => n,
                            None => match values.pop() {
                                Some(Value::Number(n)) if n >= 0.0 => n as usize,
                                _ => return Err(mlua::Error::runtime("format 'c0' needs a previous size")),
                            },
                        };
                        if pos + size > data.len() {
                            return Err(short());
                        }
                        values.push(Value::String(lua.create_string(&data[pos..pos + size])?));
                        pos += size;
                    }
                    _ => {
                        let rest = data.get(pos..).unwrap_or_default();
                        let Some(end) = rest.iter().position(|&b| b == 0) else {
                            return Err(mlua::Error::runtime("unfinished string in data"));
                        };
                        values.push(Value::String(lua.create_string(&rest[..end])?));
                        pos += end + 1;
                    }
                }
            }
            values.push(Value::Number((pos + 1) as f64));
            Ok(MultiValue::from_iter(values))
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|_, args: MultiValue| {
            let fmt = string_arg(&args, 0, "size")?;
            let mut f = Format { f: &fmt, i: 0, little: true, align: 1 };
            let mut total = 0usize;
            while let Some(opt) = f.next("size")? {
                let Some(size) = opt.size else {
                    let which = if opt.letter == b's' { "'s'" } else { "'c0'" };
                    return Err(arg_error(1, "size", &format!("option {which} has no fixed size")));
                };
                total += f.padding(&opt, total) + size;
            }
            Ok(total as f64)
        })?,
    )?;
    Ok(t)
}
