//! The two small expression languages of a spec:
//!
//! - **filters** on a layer's attributes, applied before attribution:
//!   `year < 1975`, `energy_class in ['E', 'F', 'G']`,
//!   `floors >= 3 and not (material = 'wood')`, `height is not null`.
//!   A comparison with a null value is false.
//! - **ratios** over other indicators of the same zone:
//!   `n_flooded / n_buildings * 100`, with `+ - * /`, parentheses and numbers.
//!   A null operand or a division by zero gives null.

use std::collections::BTreeSet;

use crate::error::{Error, Result};

/// In a filter, the prefix of the zone's columns (`zone.population > 1000`).
pub const ZONE_PREFIX: &str = "zone.";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn err(expr: &str, message: impl Into<String>) -> Error {
    Error::Expr {
        expr: expr.to_string(),
        message: message.into(),
    }
}

fn tokenize(src: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || chars[i] == 'E'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                s.parse()
                    .map_err(|_| err(src, format!("bad number `{s}`")))?,
            ));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '.'
                    || chars[i] == ':')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == '\'' || c == '"' {
            let q = c;
            i += 1;
            let start = i;
            while i < chars.len() && chars[i] != q {
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(src, "unterminated string"));
            }
            out.push(Tok::Str(chars[start..i].iter().collect()));
            i += 1;
            continue;
        }
        if c == '`' {
            i += 1;
            let start = i;
            while i < chars.len() && chars[i] != '`' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(src, "unterminated `quoted` name"));
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = ["<=", ">=", "!=", "==", "<>"]
            .into_iter()
            .find(|o| *o == two);
        if let Some(o) = op2 {
            out.push(Tok::Op(if o == "<>" { "!=" } else { o }));
            i += 2;
            continue;
        }
        let t = match c {
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '=' => Tok::Op("=="),
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            other => return Err(err(src, format!("unexpected character `{other}`"))),
        };
        out.push(t);
        i += 1;
    }
    Ok(out)
}

/// A literal value in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Both sides.
    And(Box<Filter>, Box<Filter>),
    /// Either side.
    Or(Box<Filter>, Box<Filter>),
    /// Negation (of a non-null comparison).
    Not(Box<Filter>),
    /// `column op literal`.
    Cmp {
        /// The column.
        column: String,
        /// One of `== != < <= > >=`.
        op: &'static str,
        /// The value.
        value: Literal,
    },
    /// `column in [a, b, …]`.
    In {
        /// The column.
        column: String,
        /// The values.
        values: Vec<Literal>,
    },
    /// `column is null` / `column is not null`.
    IsNull {
        /// The column.
        column: String,
        /// `true` for `is null`.
        null: bool,
    },
    /// A boolean column, taken as is.
    Column(String),
}

struct P<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    pos: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(k))
    }
    fn fail<T>(&self, msg: impl Into<String>) -> Result<T> {
        Err(err(self.src, msg))
    }

    fn or(&mut self) -> Result<Filter> {
        let mut l = self.and()?;
        while self.kw("or") {
            self.pos += 1;
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter> {
        let mut l = self.not()?;
        while self.kw("and") {
            self.pos += 1;
            l = Filter::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Filter> {
        if self.kw("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn literal(&mut self) -> Result<Literal> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Literal::Num(n)),
            Some(Tok::Op("-")) => match self.next() {
                Some(Tok::Num(n)) => Ok(Literal::Num(-n)),
                _ => self.fail("expected a number after `-`"),
            },
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(t) => self.fail(format!("expected a value, found {t:?}")),
            None => self.fail("expected a value, found the end"),
        }
    }
    fn cmp(&mut self) -> Result<Filter> {
        match self.next() {
            Some(Tok::LParen) => {
                let f = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(f),
                    _ => self.fail("missing `)`"),
                }
            }
            Some(Tok::Ident(column)) => {
                if self.kw("in") {
                    self.pos += 1;
                    if self.next() != Some(Tok::LBracket) {
                        return self.fail("expected `[` after `in`");
                    }
                    let mut values = Vec::new();
                    loop {
                        if self.peek() == Some(&Tok::RBracket) {
                            self.pos += 1;
                            break;
                        }
                        values.push(self.literal()?);
                        match self.next() {
                            Some(Tok::Comma) => {}
                            Some(Tok::RBracket) => break,
                            _ => return self.fail("expected `,` or `]` in list"),
                        }
                    }
                    return Ok(Filter::In { column, values });
                }
                if self.kw("is") {
                    self.pos += 1;
                    let negate = self.kw("not");
                    if negate {
                        self.pos += 1;
                    }
                    if !self.kw("null") {
                        return self.fail("expected `null` after `is`");
                    }
                    self.pos += 1;
                    return Ok(Filter::IsNull {
                        column,
                        null: !negate,
                    });
                }
                match self.peek() {
                    Some(Tok::Op(op)) if ["==", "!=", "<", "<=", ">", ">="].contains(op) => {
                        let op = *op;
                        self.pos += 1;
                        let value = self.literal()?;
                        Ok(Filter::Cmp { column, op, value })
                    }
                    _ => Ok(Filter::Column(column)),
                }
            }
            Some(t) => self.fail(format!("expected a column name, found {t:?}")),
            None => self.fail("empty filter"),
        }
    }
}

impl Filter {
    /// Parse a filter.
    ///
    /// ```
    /// use terrastat_indicators::expr::Filter;
    /// let f = Filter::parse("year < 1975 and energy_class in ['F', 'G']")?;
    /// assert_eq!(f.columns(), ["energy_class", "year"].map(String::from).into());
    /// assert!(Filter::parse("year <").is_err());
    /// # Ok::<(), terrastat_indicators::Error>(())
    /// ```
    pub fn parse(src: &str) -> Result<Filter> {
        let mut p = P {
            src,
            toks: tokenize(src)?,
            pos: 0,
        };
        let f = p.or()?;
        if p.pos < p.toks.len() {
            return p.fail(format!("unexpected {:?}", p.toks[p.pos]));
        }
        Ok(f)
    }

    /// The columns the filter reads.
    pub fn columns(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        self.collect(&mut s);
        s
    }
    fn collect(&self, s: &mut BTreeSet<String>) {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.collect(s);
                b.collect(s);
            }
            Filter::Not(a) => a.collect(s),
            Filter::Cmp { column, .. }
            | Filter::In { column, .. }
            | Filter::IsNull { column, .. }
            | Filter::Column(column) => {
                s.insert(column.clone());
            }
        }
    }

    /// Evaluate for one row; `get` returns the row's value of a column.
    /// Comparisons with null are false (and so is their negation).
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<Literal>) -> Option<bool> {
        match self {
            Filter::And(a, b) => Some(a.eval(get).unwrap_or(false) && b.eval(get).unwrap_or(false)),
            Filter::Or(a, b) => Some(a.eval(get).unwrap_or(false) || b.eval(get).unwrap_or(false)),
            Filter::Not(a) => a.eval(get).map(|v| !v),
            Filter::IsNull { column, null } => Some(get(column).is_none() == *null),
            Filter::Column(c) => match get(c)? {
                Literal::Bool(b) => Some(b),
                Literal::Num(n) => Some(n != 0.0),
                Literal::Str(_) => None,
            },
            Filter::In { column, values } => {
                let v = get(column)?;
                Some(values.iter().any(|x| lit_eq(&v, x)))
            }
            Filter::Cmp { column, op, value } => {
                let v = get(column)?;
                let ord = match (&v, value) {
                    (Literal::Num(a), Literal::Num(b)) => a.partial_cmp(b)?,
                    (Literal::Str(a), Literal::Str(b)) => a.cmp(b),
                    (Literal::Bool(a), Literal::Bool(b)) => a.cmp(b),
                    (Literal::Str(a), Literal::Num(b)) => a.parse::<f64>().ok()?.partial_cmp(b)?,
                    _ => return None,
                };
                use std::cmp::Ordering::*;
                Some(match *op {
                    "==" => ord == Equal,
                    "!=" => ord != Equal,
                    "<" => ord == Less,
                    "<=" => ord != Greater,
                    ">" => ord == Greater,
                    _ => ord != Less,
                })
            }
        }
    }
}

fn lit_eq(a: &Literal, b: &Literal) -> bool {
    match (a, b) {
        (Literal::Num(x), Literal::Num(y)) => x == y,
        (Literal::Str(x), Literal::Str(y)) => x == y,
        (Literal::Bool(x), Literal::Bool(y)) => x == y,
        (Literal::Str(x), Literal::Num(y)) => x.parse::<f64>().is_ok_and(|v| v == *y),
        (Literal::Num(x), Literal::Str(y)) => y.parse::<f64>().is_ok_and(|v| v == *x),
        _ => false,
    }
}

/// A function of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Func {
    /// `min(a, b, …)`: the smallest non-null argument (null if all are).
    Min,
    /// `max(a, b, …)`: the largest non-null argument (null if all are).
    Max,
    /// `coalesce(a, b, …)`: the first non-null argument.
    Coalesce,
    /// `if(condition, a, b)`: `a` when the condition is true, else `b`
    /// (a null condition counts as false, as SQL's `CASE WHEN`).
    If,
}

impl Func {
    /// The functions, by name.
    pub const ALL: [(&'static str, Func); 4] = [
        ("min", Func::Min),
        ("max", Func::Max),
        ("coalesce", Func::Coalesce),
        ("if", Func::If),
    ];

    fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A parsed expression over named numbers (indicators, zone columns, table
/// columns): numbers, `+ - * /`, comparisons (`< <= > >= = !=`), `and`,
/// `or`, `not`, `true`, `false`, `null` and the functions of [`Func`].
/// Types are checked when parsing: the whole expression, arithmetic
/// operands and function values are numbers; `and`/`or`/`not` operands and
/// the first argument of `if` are conditions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Arith {
    /// A number.
    Num(f64),
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A named value (indicator, zone column, `table.column`).
    Name(String),
    /// `-x`.
    Neg(Box<Arith>),
    /// A binary operation, one of `+ - * /`.
    Bin(char, Box<Arith>, Box<Arith>),
    /// A comparison, one of `<`, `<=`, `>`, `>=`, `==`, `!=`.
    Cmp(&'static str, Box<Arith>, Box<Arith>),
    /// `a and b`.
    And(Box<Arith>, Box<Arith>),
    /// `a or b`.
    Or(Box<Arith>, Box<Arith>),
    /// `not a`.
    Not(Box<Arith>),
    /// A function call.
    Call(Func, Vec<Arith>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Num,
    Cond,
}

impl Ty {
    fn word(self) -> &'static str {
        match self {
            Ty::Num => "a number",
            Ty::Cond => "a condition",
        }
    }
}

impl Arith {
    /// Parse an expression; the whole must be a number.
    ///
    /// ```
    /// use terrastat_indicators::expr::Arith;
    /// let e = Arith::parse("(a + 1) / b")?;
    /// let v = e.eval(&|n| match n { "a" => Some(3.0), "b" => Some(2.0), _ => None });
    /// assert_eq!(v, Some(2.0));
    /// assert_eq!(e.eval(&|n| if n == "a" { Some(1.0) } else { Some(0.0) }), None); // division by zero
    /// let e = Arith::parse("if(population > 0, max(a, 0) / population, null)")?;
    /// assert_eq!(e.eval(&|n| match n { "a" => Some(-3.0), _ => Some(10.0) }), Some(0.0));
    /// assert!(Arith::parse("a and b").is_err()); // a condition, not a number
    /// assert!(Arith::parse("avg(a)").is_err()); // unknown function
    /// # Ok::<(), terrastat_indicators::Error>(())
    /// ```
    pub fn parse(src: &str) -> Result<Arith> {
        let mut p = P {
            src,
            toks: tokenize(src)?,
            pos: 0,
        };
        let (e, ty) = ex_or(&mut p)?;
        if p.pos < p.toks.len() {
            return p.fail(format!("unexpected {:?}", p.toks[p.pos]));
        }
        if ty != Ty::Num {
            return p.fail("the expression is a condition, not a number: wrap it in `if(…, 1, 0)`");
        }
        Ok(e)
    }

    /// The names the expression reads.
    pub fn names(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        self.walk(&mut |e| {
            if let Arith::Name(n) = e {
                s.insert(n.clone());
            }
        });
        s
    }

    fn walk(&self, f: &mut dyn FnMut(&Arith)) {
        f(self);
        match self {
            Arith::Neg(a) | Arith::Not(a) => a.walk(f),
            Arith::Bin(_, a, b) | Arith::Cmp(_, a, b) | Arith::And(a, b) | Arith::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Arith::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            Arith::Num(_) | Arith::Null | Arith::Bool(_) | Arith::Name(_) => {}
        }
    }

    /// Evaluate; null operands and division by zero give `None`.
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        match self {
            Arith::Num(n) => Some(*n),
            Arith::Name(n) => get(n),
            Arith::Neg(a) => a.eval(get).map(|v| -v),
            Arith::Bin(op, a, b) => {
                let (a, b) = (a.eval(get)?, b.eval(get)?);
                match op {
                    '+' => Some(a + b),
                    '-' => Some(a - b),
                    '*' => Some(a * b),
                    _ => (b != 0.0).then(|| a / b),
                }
            }
            Arith::Call(Func::If, args) => {
                if args[0].test(get) == Some(true) {
                    args[1].eval(get)
                } else {
                    args[2].eval(get)
                }
            }
            Arith::Call(Func::Coalesce, args) => args.iter().find_map(|a| a.eval(get)),
            Arith::Call(f, args) => args.iter().filter_map(|a| a.eval(get)).reduce(|x, y| {
                if *f == Func::Min {
                    x.min(y)
                } else {
                    x.max(y)
                }
            }),
            Arith::Null
            | Arith::Bool(_)
            | Arith::Cmp(..)
            | Arith::And(..)
            | Arith::Or(..)
            | Arith::Not(_) => None,
        }
    }

    /// Evaluate a condition with SQL's three-valued logic (`None`: unknown).
    fn test(&self, get: &dyn Fn(&str) -> Option<f64>) -> Option<bool> {
        match self {
            Arith::Bool(b) => Some(*b),
            Arith::Cmp(op, a, b) => {
                let (a, b) = (a.eval(get)?, b.eval(get)?);
                Some(match *op {
                    "<" => a < b,
                    "<=" => a <= b,
                    ">" => a > b,
                    ">=" => a >= b,
                    "==" => a == b,
                    _ => a != b,
                })
            }
            Arith::Not(a) => a.test(get).map(|v| !v),
            Arith::And(a, b) => match (a.test(get), b.test(get)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Arith::Or(a, b) => match (a.test(get), b.test(get)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

fn want(p: &P, what: &str, (e, ty): (Arith, Ty), need: Ty) -> Result<Arith> {
    if ty == need {
        Ok(e)
    } else {
        p.fail(format!("{what} needs {}, got {}", need.word(), ty.word()))
    }
}

fn ex_or(p: &mut P) -> Result<(Arith, Ty)> {
    let mut l = ex_and(p)?;
    while p.kw("or") {
        p.pos += 1;
        let a = want(p, "`or`", l, Ty::Cond)?;
        let b = {
            let r = ex_and(p)?;
            want(p, "`or`", r, Ty::Cond)
        }?;
        l = (Arith::Or(Box::new(a), Box::new(b)), Ty::Cond);
    }
    Ok(l)
}
fn ex_and(p: &mut P) -> Result<(Arith, Ty)> {
    let mut l = ex_not(p)?;
    while p.kw("and") {
        p.pos += 1;
        let a = want(p, "`and`", l, Ty::Cond)?;
        let b = {
            let r = ex_not(p)?;
            want(p, "`and`", r, Ty::Cond)
        }?;
        l = (Arith::And(Box::new(a), Box::new(b)), Ty::Cond);
    }
    Ok(l)
}
fn ex_not(p: &mut P) -> Result<(Arith, Ty)> {
    if p.kw("not") {
        p.pos += 1;
        let a = {
            let r = ex_not(p)?;
            want(p, "`not`", r, Ty::Cond)
        }?;
        return Ok((Arith::Not(Box::new(a)), Ty::Cond));
    }
    ex_cmp(p)
}
fn ex_cmp(p: &mut P) -> Result<(Arith, Ty)> {
    let l = ex_sum(p)?;
    if let Some(Tok::Op(op @ ("<" | "<=" | ">" | ">=" | "==" | "!="))) = p.peek() {
        let op = *op;
        p.pos += 1;
        let what = format!("`{op}`");
        let a = want(p, &what, l, Ty::Num)?;
        let b = {
            let r = ex_sum(p)?;
            want(p, &what, r, Ty::Num)
        }?;
        return Ok((Arith::Cmp(op, Box::new(a), Box::new(b)), Ty::Cond));
    }
    Ok(l)
}
fn ex_sum(p: &mut P) -> Result<(Arith, Ty)> {
    let mut l = ex_prod(p)?;
    while let Some(Tok::Op(op @ ("+" | "-"))) = p.peek() {
        let c = if *op == "+" { '+' } else { '-' };
        p.pos += 1;
        let what = format!("`{c}`");
        let a = want(p, &what, l, Ty::Num)?;
        let b = {
            let r = ex_prod(p)?;
            want(p, &what, r, Ty::Num)
        }?;
        l = (Arith::Bin(c, Box::new(a), Box::new(b)), Ty::Num);
    }
    Ok(l)
}
fn ex_prod(p: &mut P) -> Result<(Arith, Ty)> {
    let mut l = ex_unary(p)?;
    while let Some(Tok::Op(op @ ("*" | "/"))) = p.peek() {
        let c = if *op == "*" { '*' } else { '/' };
        p.pos += 1;
        let what = format!("`{c}`");
        let a = want(p, &what, l, Ty::Num)?;
        let b = {
            let r = ex_unary(p)?;
            want(p, &what, r, Ty::Num)
        }?;
        l = (Arith::Bin(c, Box::new(a), Box::new(b)), Ty::Num);
    }
    Ok(l)
}
fn ex_unary(p: &mut P) -> Result<(Arith, Ty)> {
    match p.next() {
        Some(Tok::Op("-")) => {
            let a = {
                let r = ex_unary(p)?;
                want(p, "`-`", r, Ty::Num)
            }?;
            Ok((Arith::Neg(Box::new(a)), Ty::Num))
        }
        Some(Tok::Num(n)) => Ok((Arith::Num(n), Ty::Num)),
        Some(Tok::Ident(n)) if p.peek() == Some(&Tok::LParen) => {
            p.pos += 1;
            let Some(f) = Func::ALL
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&n))
                .map(|(_, f)| *f)
            else {
                let known: Vec<&str> = Func::ALL.iter().map(|(k, _)| *k).collect();
                return p.fail(format!(
                    "unknown function `{n}` (known: {})",
                    known.join(", ")
                ));
            };
            let mut args = Vec::new();
            if p.peek() != Some(&Tok::RParen) {
                loop {
                    args.push(ex_or(p)?);
                    match p.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => return p.fail(format!("missing `)` after the arguments of `{n}`")),
                    }
                }
            } else {
                p.pos += 1;
            }
            let what = format!("`{}`", f.name());
            let args = match f {
                Func::If => {
                    if args.len() != 3 {
                        return p.fail(format!(
                            "`if` takes 3 arguments (condition, then, else), got {}",
                            args.len()
                        ));
                    }
                    let mut it = args.into_iter();
                    let mut out = Vec::with_capacity(3);
                    for (k, a) in it.by_ref().enumerate().take(3) {
                        let need = if k == 0 { Ty::Cond } else { Ty::Num };
                        out.push(want(p, &format!("argument {} of `if`", k + 1), a, need)?);
                    }
                    out
                }
                _ => {
                    if args.is_empty() {
                        return p.fail(format!("{what} needs at least one argument"));
                    }
                    args.into_iter()
                        .map(|a| want(p, &what, a, Ty::Num))
                        .collect::<Result<_>>()?
                }
            };
            Ok((Arith::Call(f, args), Ty::Num))
        }
        Some(Tok::Ident(n)) if n.eq_ignore_ascii_case("true") => Ok((Arith::Bool(true), Ty::Cond)),
        Some(Tok::Ident(n)) if n.eq_ignore_ascii_case("false") => {
            Ok((Arith::Bool(false), Ty::Cond))
        }
        Some(Tok::Ident(n)) if n.eq_ignore_ascii_case("null") => Ok((Arith::Null, Ty::Num)),
        Some(Tok::Ident(n))
            if ["and", "or", "not"]
                .iter()
                .any(|k| n.eq_ignore_ascii_case(k)) =>
        {
            p.fail(format!("unexpected `{n}`"))
        }
        Some(Tok::Ident(n)) => Ok((Arith::Name(n), Ty::Num)),
        Some(Tok::LParen) => {
            let e = ex_or(p)?;
            match p.next() {
                Some(Tok::RParen) => Ok(e),
                _ => p.fail("missing `)`"),
            }
        }
        Some(t) => p.fail(format!("unexpected {t:?}")),
        None => p.fail("unexpected end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(year: Option<f64>, class: Option<&str>) -> impl Fn(&str) -> Option<Literal> + '_ {
        move |c| match c {
            "year" => year.map(Literal::Num),
            "class" => class.map(|s| Literal::Str(s.to_string())),
            _ => None,
        }
    }

    #[test]
    fn filters() {
        let f = Filter::parse("year < 1975 and class in ['E','F','G']").unwrap();
        assert_eq!(f.eval(&row(Some(1960.0), Some("F"))), Some(true));
        assert_eq!(f.eval(&row(Some(1980.0), Some("F"))), Some(false));
        assert_eq!(f.eval(&row(None, Some("F"))), Some(false));
        let f = Filter::parse("not (year >= 1975)").unwrap();
        assert_eq!(f.eval(&row(Some(1960.0), None)), Some(true));
        assert_eq!(
            f.eval(&row(None, None)),
            None,
            "negating a null comparison stays null"
        );
        let f = Filter::parse("class is null or year = 2000").unwrap();
        assert_eq!(f.eval(&row(Some(2000.0), Some("A"))), Some(true));
        assert_eq!(f.eval(&row(Some(1.0), None)), Some(true));
        assert_eq!(f.eval(&row(Some(1.0), Some("A"))), Some(false));
        for bad in [
            "",
            "year <",
            "year in [1, 2",
            "(year > 1",
            "year ~ 3",
            "'x' = year",
            "year is 3",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arith() {
        let e = Arith::parse("a / b * 100 - -2").unwrap();
        assert_eq!(
            e.eval(&|n| if n == "a" { Some(1.0) } else { Some(4.0) }),
            Some(27.0)
        );
        assert_eq!(e.eval(&|_| None), None);
        assert_eq!(
            Arith::parse("1 + 2 * 3").unwrap().eval(&|_| None),
            Some(7.0)
        );
        assert!(Arith::parse("a +").is_err());
        assert!(Arith::parse("a b").is_err());
    }

    #[test]
    fn functions_and_conditions() {
        let get = |n: &str| match n {
            "a" => Some(2.0),
            "b" => Some(5.0),
            "tax.base" => Some(100.0),
            _ => None,
        };
        let v = |s: &str| Arith::parse(s).unwrap().eval(&get);
        assert_eq!(v("min(a, b, 3)"), Some(2.0));
        assert_eq!(v("max(a, missing, b)"), Some(5.0), "nulls are skipped");
        assert_eq!(v("max(missing)"), None);
        assert_eq!(v("coalesce(missing, null, b, a)"), Some(5.0));
        assert_eq!(v("coalesce(missing)"), None);
        assert_eq!(v("if(a < b, 1, 0)"), Some(1.0));
        assert_eq!(v("if(a >= b or a == 2, 10, 20)"), Some(10.0));
        assert_eq!(v("if(a != 2 and b > 1, 10, 20)"), Some(20.0));
        assert_eq!(v("if(not (a <= 1), tax.base / b, 0)"), Some(20.0));
        assert_eq!(
            v("if(missing > 1, 1, 0)"),
            Some(0.0),
            "an unknown condition is false"
        );
        assert_eq!(
            v("if(missing > 1 or true, 1, 0)"),
            Some(1.0),
            "three-valued or"
        );
        assert_eq!(v("if(missing > 1 and false, 1, 0)"), Some(0.0));
        assert_eq!(
            v("IF(true, a, b) + MIN(a)"),
            Some(4.0),
            "names of functions ignore case"
        );
        let names = Arith::parse("if(population > 0, floor_sum / population, tax.base)")
            .unwrap()
            .names();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["floor_sum", "population", "tax.base"]
        );
        for (bad, says) in [
            (
                "avg(a)",
                "unknown function `avg` (known: min, max, coalesce, if)",
            ),
            ("a < b", "the expression is a condition"),
            (
                "if(a, 1, 0)",
                "argument 1 of `if` needs a condition, got a number",
            ),
            (
                "if(a > 1, b < 2, 0)",
                "argument 2 of `if` needs a number, got a condition",
            ),
            ("if(a > 1, 1)", "`if` takes 3 arguments"),
            ("a + (b > 1)", "`+` needs a number, got a condition"),
            ("a and b > 1", "`and` needs a condition, got a number"),
            ("not a", "`not` needs a condition, got a number"),
            ("min()", "`min` needs at least one argument"),
            ("max(a, b", "missing `)`"),
            ("a > b > 1", "unexpected"),
        ] {
            let e = Arith::parse(bad).expect_err(bad).to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
