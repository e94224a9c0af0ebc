//! The `bit` library Redis loads (LuaBitOp 1.0): 32-bit operations on Lua numbers.

use mlua::{Lua, MultiValue, Table, Value};

/// A number as LuaBitOp normalizes it: rounded to the nearest integer (ties to even) and
/// wrapped to a signed 32-bit value.
fn tobit(n: f64) -> i32 {
    let r = n.round_ties_even();
    if !r.is_finite() {
        return 0;
    }
    (r.rem_euclid(4_294_967_296.0) as u64 as u32) as i32
}

fn arg(args: &MultiValue, i: usize, name: &str) -> mlua::Result<i32> {
    match args.get(i) {
        Some(Value::Integer(n)) => Ok(tobit(*n as f64)),
        Some(Value::Number(n)) => Ok(tobit(*n)),
        Some(Value::String(s)) => match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(n) => Ok(tobit(n)),
            None => Err(bad(i, name, "string")),
        },
        Some(v) => Err(bad(i, name, v.type_name())),
        None => Err(bad(i, name, "no value")),
    }
}

fn bad(i: usize, name: &str, got: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{} to '{name}' (number expected, got {got})", i + 1))
}

/// The library table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fold = |name: &'static str, op: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let mut acc = arg(&args, 0, name)?;
            for i in 1..args.len() {
                acc = op(acc, arg(&args, i, name)?);
            }
            Ok(acc as f64)
        })
    };
    t.raw_set("band", fold("band", |a, b| a & b)?)?;
    t.raw_set("bor", fold("bor", |a, b| a | b)?)?;
    t.raw_set("bxor", fold("bxor", |a, b| a ^ b)?)?;
    let unary = |name: &'static str, op: fn(i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| Ok(op(arg(&args, 0, name)?) as f64))
    };
    t.raw_set("tobit", unary("tobit", |a| a)?)?;
    t.raw_set("bnot", unary("bnot", |a| !a)?)?;
    t.raw_set("bswap", unary("bswap", |a| a.swap_bytes())?)?;
    let shift = |name: &'static str, op: fn(i32, u32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let (a, n) = (arg(&args, 0, name)?, arg(&args, 1, name)? as u32 & 31);
            Ok(op(a, n) as f64)
        })
    };
    t.raw_set("lshift", shift("lshift", |a, n| ((a as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift("rshift", |a, n| ((a as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift("arshift", |a, n| a >> n)?)?;
    t.raw_set("rol", shift("rol", |a, n| (a as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift("ror", |a, n| (a as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, args: MultiValue| {
            let x = arg(&args, 0, "tohex")? as u32;
            let n = if args.len() > 1 { arg(&args, 1, "tohex")? } else { 8 };
            let upper = n < 0;
            let n = (n.unsigned_abs() as usize).clamp(1, 8);
            let hex = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(hex[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::tobit;

    #[test]
    fn tobit_wraps_like_luabitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(3.5), 4);
    }
}
