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

/// A parsed arithmetic expression over indicator names.
#[derive(Debug, Clone, PartialEq)]
pub enum Arith {
    /// A number.
    Num(f64),
    /// Another indicator's value.
    Name(String),
    /// `-x`.
    Neg(Box<Arith>),
    /// A binary operation, one of `+ - * /`.
    Bin(char, Box<Arith>, Box<Arith>),
}

impl Arith {
    /// Parse an expression.
    ///
    /// ```
    /// use terrastat_indicators::expr::Arith;
    /// let e = Arith::parse("(a + 1) / b")?;
    /// let v = e.eval(&|n| match n { "a" => Some(3.0), "b" => Some(2.0), _ => None });
    /// assert_eq!(v, Some(2.0));
    /// assert_eq!(e.eval(&|n| if n == "a" { Some(1.0) } else { Some(0.0) }), None); // division by zero
    /// # Ok::<(), terrastat_indicators::Error>(())
    /// ```
    pub fn parse(src: &str) -> Result<Arith> {
        let mut p = P {
            src,
            toks: tokenize(src)?,
            pos: 0,
        };
        let e = arith_sum(&mut p)?;
        if p.pos < p.toks.len() {
            return p.fail(format!("unexpected {:?}", p.toks[p.pos]));
        }
        Ok(e)
    }

    /// The names the expression reads.
    pub fn names(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        fn walk(e: &Arith, s: &mut BTreeSet<String>) {
            match e {
                Arith::Num(_) => {}
                Arith::Name(n) => {
                    s.insert(n.clone());
                }
                Arith::Neg(a) => walk(a, s),
                Arith::Bin(_, a, b) => {
                    walk(a, s);
                    walk(b, s);
                }
            }
        }
        walk(self, &mut s);
        s
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
        }
    }
}

fn arith_sum(p: &mut P) -> Result<Arith> {
    let mut l = arith_prod(p)?;
    while let Some(Tok::Op(op @ ("+" | "-"))) = p.peek() {
        let c = op.chars().next().unwrap_or('+');
        p.pos += 1;
        l = Arith::Bin(c, Box::new(l), Box::new(arith_prod(p)?));
    }
    Ok(l)
}
fn arith_prod(p: &mut P) -> Result<Arith> {
    let mut l = arith_unary(p)?;
    while let Some(Tok::Op(op @ ("*" | "/"))) = p.peek() {
        let c = op.chars().next().unwrap_or('*');
        p.pos += 1;
        l = Arith::Bin(c, Box::new(l), Box::new(arith_unary(p)?));
    }
    Ok(l)
}
fn arith_unary(p: &mut P) -> Result<Arith> {
    match p.next() {
        Some(Tok::Op("-")) => Ok(Arith::Neg(Box::new(arith_unary(p)?))),
        Some(Tok::Num(n)) => Ok(Arith::Num(n)),
        Some(Tok::Ident(n)) => Ok(Arith::Name(n)),
        Some(Tok::LParen) => {
            let e = arith_sum(p)?;
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
}
