//! A small Rust lexer: enough to tell code from comments and string literals, and to hand
//! the checks doc comments with their lines.
//!
//! # Invariants
//!
//! - Plain comments (`//`, `/* */`, nested) produce no token; doc comments (`///`, `//!`,
//!   `/** */`, `/*! */`) produce one [`Tok::Doc`] each, with the text after the marker.
//! - A string literal (plain, byte, C, raw with any number of `#`) is one [`Tok::Str`]
//!   holding its value, so text inside it never looks like code.
//! - Numbers, character literals and lifetimes are [`Tok::Other`]: no check reads them.
//! - Every token carries the 1-based line it starts on.
//! - Malformed input (an unterminated string or comment) ends the token stream; it never
//!   panics.

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword (`r#` stripped).
    Ident(String),
    /// One punctuation character.
    Punct(char),
    /// A string literal's value (escapes `\\`, `\"`, `\n`, `\t` resolved).
    Str(String),
    /// A doc comment's text, after `///`, `//!`, `/**` or `/*!`.
    Doc(String),
    /// A number, character literal or lifetime.
    Other,
}

/// A token and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
}

/// Splits Rust source into tokens.
pub(crate) fn tokens(src: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    lexer.run();
    lexer.out
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                '/' if self.peek(1) == Some('/') => self.line_comment(line),
                '/' if self.peek(1) == Some('*') => {
                    if !self.block_comment(line) {
                        return;
                    }
                }
                '"' => {
                    self.bump();
                    match self.quoted() {
                        Some(s) => self.push(Tok::Str(s), line),
                        None => return,
                    }
                }
                '\'' => self.quote_or_lifetime(line),
                c if c.is_ascii_digit() => {
                    self.word();
                    self.push(Tok::Other, line);
                }
                c if c == '_' || c.is_alphanumeric() => {
                    if !self.word_or_prefixed_literal(line) {
                        return;
                    }
                }
                c => {
                    self.bump();
                    self.push(Tok::Punct(c), line);
                }
            }
        }
    }

    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_alphanumeric() {
                w.push(c);
                self.bump();
            } else {
                break;
            }
        }
        w
    }

    /// An identifier, or a literal with a prefix (`b"…"`, `r#"…"#`, `br"…"`, `c"…"`,
    /// `b'x'`), or a raw identifier (`r#name`). False when a literal is unterminated.
    fn word_or_prefixed_literal(&mut self, line: usize) -> bool {
        let w = self.word();
        let raw_prefix = matches!(w.as_str(), "r" | "br" | "cr");
        let str_prefix = matches!(w.as_str(), "b" | "c");
        match self.peek(0) {
            Some('"') if str_prefix => {
                self.bump();
                match self.quoted() {
                    Some(s) => self.push(Tok::Str(s), line),
                    None => return false,
                }
            }
            Some('\'') if w == "b" => self.quote_or_lifetime(line),
            Some('"') if raw_prefix => {
                self.bump();
                match self.raw(0) {
                    Some(s) => self.push(Tok::Str(s), line),
                    None => return false,
                }
            }
            Some('#') if raw_prefix => {
                let mut hashes = 0;
                while self.peek(hashes) == Some('#') {
                    hashes += 1;
                }
                if self.peek(hashes) == Some('"') {
                    for _ in 0..=hashes {
                        self.bump();
                    }
                    match self.raw(hashes) {
                        Some(s) => self.push(Tok::Str(s), line),
                        None => return false,
                    }
                } else if w == "r" && hashes == 1 {
                    // A raw identifier: `r#type`.
                    self.bump();
                    let name = self.word();
                    self.push(Tok::Ident(name), line);
                } else {
                    self.push(Tok::Ident(w), line);
                }
            }
            _ => self.push(Tok::Ident(w), line),
        }
        true
    }

    /// The rest of a `"…"` literal after its opening quote; `None` if unterminated.
    fn quoted(&mut self) -> Option<String> {
        let mut s = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(s),
                '\\' => match self.bump()? {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    '\n' => {
                        // A line continuation: the newline and the next line's indent vanish.
                        while self.peek(0).is_some_and(char::is_whitespace) {
                            self.bump();
                        }
                    }
                    other => s.push(other),
                },
                c => s.push(c),
            }
        }
    }

    /// The rest of a raw literal after its opening quote, closed by `"` and `hashes` `#`s.
    fn raw(&mut self, hashes: usize) -> Option<String> {
        let mut s = String::new();
        loop {
            let c = self.bump()?;
            if c == '"' && (0..hashes).all(|i| self.peek(i) == Some('#')) {
                for _ in 0..hashes {
                    self.bump();
                }
                return Some(s);
            }
            s.push(c);
        }
    }

    /// `'x'`, `'\n'`, `'\u{1F600}'` (character literals) or `'a` (a lifetime or label).
    fn quote_or_lifetime(&mut self, line: usize) {
        self.bump();
        if self.peek(0) == Some('\\') {
            // The backslash and the escaped character, then up to the closing quote.
            self.bump();
            self.bump();
            while let Some(c) = self.bump() {
                if c == '\'' || c == '\n' {
                    break;
                }
            }
        } else if self.peek(1) == Some('\'') {
            self.bump();
            self.bump();
        } else {
            self.word();
        }
        self.push(Tok::Other, line);
    }

    fn line_comment(&mut self, line: usize) {
        self.bump();
        self.bump();
        let doc = match (self.peek(0), self.peek(1)) {
            (Some('/'), Some('/')) => false,
            (Some('/'), _) | (Some('!'), _) => true,
            _ => false,
        };
        if doc {
            self.bump();
        }
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            if c == '\n' {
                break;
            }
            text.push(c);
            self.bump();
        }
        if doc {
            self.push(Tok::Doc(text), line);
        }
    }

    /// A block comment, nested; false when unterminated.
    fn block_comment(&mut self, line: usize) -> bool {
        self.bump();
        self.bump();
        let doc = match (self.peek(0), self.peek(1)) {
            (Some('*'), Some('*')) | (Some('*'), Some('/')) => false,
            (Some('*'), _) | (Some('!'), _) => true,
            _ => false,
        };
        if doc {
            self.bump();
        }
        let mut depth = 1;
        let mut text = String::new();
        while depth > 0 {
            let Some(c) = self.bump() else {
                return false;
            };
            if c == '/' && self.peek(0) == Some('*') {
                self.bump();
                depth += 1;
                text.push_str("/*");
            } else if c == '*' && self.peek(0) == Some('/') {
                self.bump();
                depth -= 1;
                if depth > 0 {
                    text.push_str("*/");
                }
            } else {
                text.push(c);
            }
        }
        if doc {
            self.push(Tok::Doc(text), line);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokens(src).into_iter().map(|t| t.tok).collect()
    }

    fn ident(s: &str) -> Tok {
        Tok::Ident(s.to_string())
    }

    #[test]
    fn comments_vanish_and_doc_comments_stay() {
        let src = "// plain #[doc(hidden)]\n/// outer\n//! inner\n//// not doc\n/* a /* nested */ b */\n/** block */ x";
        assert_eq!(
            toks(src),
            vec![
                Tok::Doc(" outer".into()),
                Tok::Doc(" inner".into()),
                Tok::Doc(" block ".into()),
                ident("x"),
            ]
        );
    }

    #[test]
    fn strings_hide_their_text() {
        let src =
            r####"a "x #[path = \"y\"]" r#"raw "q" "# br##"b"## b"by" 'c' '\'' '\\' 'life "####;
        assert_eq!(
            toks(src),
            vec![
                ident("a"),
                Tok::Str("x #[path = \"y\"]".into()),
                Tok::Str("raw \"q\" ".into()),
                Tok::Str("b".into()),
                Tok::Str("by".into()),
                Tok::Other,
                Tok::Other,
                Tok::Other,
                Tok::Other,
            ]
        );
    }

    #[test]
    fn lines_are_counted_across_literals_and_comments() {
        let t = tokens("a\n\"x\ny\"\n/* \n */ b r#type");
        let lines: Vec<usize> = t.iter().map(|t| t.line).collect();
        assert_eq!(lines, vec![1, 2, 5, 5]);
        assert_eq!(t[3].tok, ident("type"));
    }

    #[test]
    fn unterminated_input_ends_the_stream() {
        assert_eq!(toks("a \"open"), vec![ident("a")]);
        assert_eq!(toks("a /* open"), vec![ident("a")]);
    }
}
