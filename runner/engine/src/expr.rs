//! Symbolic addresses: `buf.a + 0x600`, `s0.addr - 0x600 + granule` (`spec/INTERPRETING.md` §
//! "Expressions"). Symbols keep a vector independent of where a door places its memory.

use crate::model::{Atom, Expr};

/// What an expression may name.
pub trait Symbols {
    /// Physical address and size of buffer `name`.
    fn buffer(&self, name: &str) -> Option<(u64, u64)>;
    /// `addr` and size word of state `name` as the implementation last left it.
    fn state(&self, name: &str) -> Option<(u64, u64)>;
    /// The IOVA granule of the platform (0 when untranslated).
    fn granule(&self) -> u64;
    /// Physical (and DMA) address of the first slot of the device's bounce pool, when the door
    /// knows it (`pool` in expressions): the machine's pool is a model choice, the kernel's moves
    /// between boots, so slot addresses are stated relative to it.
    fn pool(&self) -> Option<u64>;
    /// The repetition index `i` of a step with `repeat` (None: the step is not repeated).
    fn index(&self) -> Option<u64> {
        None
    }
}

/// Evaluates an integer or an expression string to a 64-bit value.
pub fn eval(expr: &Expr, symbols: &dyn Symbols) -> Result<u64, String> {
    eval_atom(&expr.0, symbols)
}

/// Evaluates an atom that must be a number or an expression.
pub fn eval_atom(atom: &Atom, symbols: &dyn Symbols) -> Result<u64, String> {
    match atom {
        Atom::Int(v) => u64::try_from(*v).map_err(|_| format!("{v} is not a 64-bit value")),
        Atom::Bool(b) => Err(format!("`{b}` is not a number")),
        Atom::Str(s) => eval_str(s, symbols),
    }
}

fn eval_str(text: &str, symbols: &dyn Symbols) -> Result<u64, String> {
    let total = walk(text, &mut |t| term(t, symbols))?;
    u64::try_from(total).map_err(|_| format!("`{text}` evaluates to {total}, outside 0..2^64"))
}

/// Walks `TERM ((+|-|*) TERM)*`, `*` binding tighter, with `value` giving each term; the sum
/// is exact (i128) so that `s0.addr - 0x600 + granule` never wraps on the way.
fn walk(text: &str, value: &mut dyn FnMut(&str) -> Result<u64, String>) -> Result<i128, String> {
    let overflow = || format!("`{text}`: a product or sum past 2^64");
    let mut total: i128 = 0;
    let mut sign: i128 = 1;
    let mut product: Option<i128> = None;
    let mut expect_term = true;
    for token in tokens(text)? {
        match (expect_term, token) {
            (true, Token::Term(t)) => {
                let v = i128::from(value(t)?);
                product = Some(match product {
                    Some(p) => p
                        .checked_mul(v)
                        .filter(|x| *x <= i128::from(u64::MAX))
                        .ok_or_else(overflow)?,
                    None => v,
                });
                expect_term = false;
            }
            (false, Token::Plus | Token::Minus) => {
                total = total
                    .checked_add(sign * product.take().unwrap_or(0))
                    .ok_or_else(overflow)?;
                sign = if matches!(token, Token::Minus) { -1 } else { 1 };
                expect_term = true;
            }
            (false, Token::Star) => expect_term = true,
            (true, _) => return Err(format!("`{text}`: expected a number or a name")),
            (false, Token::Term(t)) => {
                return Err(format!("`{text}`: expected +, - or * before `{t}`"))
            }
        }
    }
    if expect_term {
        return Err(format!("`{text}`: incomplete expression"));
    }
    total
        .checked_add(sign * product.unwrap_or(0))
        .ok_or_else(overflow)
}

/// Checks an expression's shape without evaluating it: operators in place, every literal a
/// 64-bit number, every name of a known form. Run at load time, so a mistake is reported at the
/// vector's file:line:column rather than when the step runs.
pub fn check_syntax(text: &str) -> Result<(), String> {
    struct AnyName;
    impl Symbols for AnyName {
        fn buffer(&self, _: &str) -> Option<(u64, u64)> {
            Some((0, 0))
        }
        fn state(&self, _: &str) -> Option<(u64, u64)> {
            Some((0, 0))
        }
        fn granule(&self) -> u64 {
            0
        }
        fn pool(&self) -> Option<u64> {
            Some(0)
        }
        fn index(&self) -> Option<u64> {
            Some(0)
        }
    }
    check_names(text, &AnyName)
}

/// Checks an expression's shape and that `symbols` knows every name in it, without doing the
/// arithmetic (the values are not known before the vector runs).
pub fn check_names(text: &str, symbols: &dyn Symbols) -> Result<(), String> {
    // Every value 0: the arithmetic cannot fail, only the shape and the names.
    walk(text, &mut |t| term(t, symbols).map(|_| 0)).map(|_| ())
}

#[derive(Clone, Copy)]
enum Token<'a> {
    Plus,
    Minus,
    Star,
    Term(&'a str),
}

fn tokens(text: &str) -> Result<Vec<Token<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while let Some(c) = rest.chars().next() {
        match c {
            '+' => {
                out.push(Token::Plus);
                rest = rest[1..].trim_start();
            }
            '-' => {
                out.push(Token::Minus);
                rest = rest[1..].trim_start();
            }
            '*' => {
                out.push(Token::Star);
                rest = rest[1..].trim_start();
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(rest.len());
                out.push(Token::Term(&rest[..end]));
                rest = rest[end..].trim_start();
            }
            other => return Err(format!("`{text}`: unexpected character `{other}`")),
        }
    }
    Ok(out)
}

/// Parses a decimal or `0x` hexadecimal literal; `_` separators are allowed.
pub fn number(text: &str) -> Option<u64> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(hex) = clean
        .strip_prefix("0x")
        .or_else(|| clean.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()
    } else if clean.chars().all(|c| c.is_ascii_digit()) && !clean.is_empty() {
        clean.parse().ok()
    } else {
        None
    }
}

fn term(t: &str, symbols: &dyn Symbols) -> Result<u64, String> {
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        return number(t).ok_or_else(|| format!("`{t}` is not a 64-bit number"));
    }
    if t == "granule" {
        return Ok(symbols.granule());
    }
    if t == "i" {
        return symbols
            .index()
            .ok_or_else(|| "`i` is the index of a step with `repeat`; this step has none".into());
    }
    if t == "pool" {
        return symbols.pool().ok_or_else(|| {
            "`pool`: this run has no bounce pool whose base the door reports".to_string()
        });
    }
    let parts: Vec<&str> = t.split('.').collect();
    match parts.as_slice() {
        ["buf", name] => symbols
            .buffer(name)
            .map(|(phys, _)| phys)
            .ok_or_else(|| format!("no buffer `{name}` in this vector")),
        ["buf", name, "end"] => symbols
            .buffer(name)
            .ok_or_else(|| format!("no buffer `{name}` in this vector"))
            .and_then(|(phys, size)| {
                phys.checked_add(size).ok_or_else(|| {
                    format!("`{t}` is 2^64 or more, past the 64-bit range")
                })
            }),
        ["buf", name, "size"] => symbols
            .buffer(name)
            .map(|(_, size)| size)
            .ok_or_else(|| format!("no buffer `{name}` in this vector")),
        [state, "addr" | "dma"] => symbols
            .state(state)
            .map(|(addr, _)| addr)
            .ok_or_else(|| format!("no state `{state}` yet in this vector")),
        [list, index, field @ ("dma" | "len")]
            if !index.is_empty() && index.chars().all(|c| c.is_ascii_digit()) =>
        {
            // DMA segment `index` of a `dma_map_sg` list, kept like a state under `LIST.i`.
            symbols
                .state(&format!("{list}.{index}"))
                .map(|(dma, len)| if *field == "dma" { dma } else { len })
                .ok_or_else(|| format!("no DMA segment {index} of list `{list}` in this vector"))
        }
        [state, "size"] => symbols
            .state(state)
            .map(|(_, size)| size & !dmaconf_platform::DMA_IOVA_USE_SWIOTLB)
            .ok_or_else(|| format!("no state `{state}` yet in this vector")),
        _ => Err(format!(
            "unknown name `{t}` (use buf.NAME, buf.NAME.end, buf.NAME.size, STATE.addr, STATE.size, HANDLE.dma, LIST.N.dma, LIST.N.len, granule or pool)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S;
    impl Symbols for S {
        fn buffer(&self, name: &str) -> Option<(u64, u64)> {
            (name == "a").then_some((0x4000_0600, 0x2000))
        }
        fn state(&self, name: &str) -> Option<(u64, u64)> {
            (name == "s0").then_some((0xFFFF_E600, 0x2000 | (1 << 63)))
        }
        fn granule(&self) -> u64 {
            0x1000
        }
        fn pool(&self) -> Option<u64> {
            Some(0x8000_0000)
        }
    }

    fn ev(s: &str) -> Result<u64, String> {
        eval(&Expr(Atom::Str(s.into())), &S)
    }

    #[test]
    fn evaluates_symbols_and_arithmetic() {
        assert_eq!(ev("buf.a + 0x10"), Ok(0x4000_0610));
        assert_eq!(ev("s0.addr - 0x600 + granule"), Ok(0xFFFF_F000));
        assert_eq!(ev("s0.size"), Ok(0x2000));
        assert_eq!(ev("buf.a.end"), Ok(0x4000_2600));
        assert_eq!(ev("1_000"), Ok(1000));
        assert_eq!(ev("pool + 0x600"), Ok(0x8000_0600));
        assert_eq!(ev("buf.a + 3 * 0x1000 - 2 * 0x10"), Ok(0x4000_35E0));
        assert_eq!(ev("2 * 3 * 4"), Ok(24));
    }

    #[test]
    fn rejects_bad_expressions() {
        assert!(ev("buf.b").unwrap_err().contains("no buffer `b`"));
        assert!(ev("0 - 1").unwrap_err().contains("outside"));
        assert!(ev("buf.a +").unwrap_err().contains("incomplete"));
        assert!(ev("buf.a 3").unwrap_err().contains("expected +"));
        assert!(ev("x/2").unwrap_err().contains("unexpected character"));
        assert!(ev("x*2").unwrap_err().contains("unknown name `x`"));
        assert!(ev("0x1_0000_0000_0000_0000").is_err());
        assert!(ev("0x1_0000_0000 * 0x1_0000_0000")
            .unwrap_err()
            .contains("past 2^64"));
        assert!(ev("i + 1").unwrap_err().contains("repeat"));
        assert!(ev("2 *").unwrap_err().contains("incomplete"));
    }
}
