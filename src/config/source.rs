//! A config file as text and as a spanned TOML tree: `${ENV}` interpolation, and the
//! positions (`file:line:col`) and key paths that every config error is reported with.

use std::cell::RefCell;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value lives in the file, as an operator would name it: `routes[0].upstream`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    /// The path one step up (the root stays the root).
    pub fn parent(&self) -> Self {
        let mut p = self.clone();
        p.0.pop();
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
            }
        }
        Ok(())
    }
}

/// The most a file the config names may hold (users files of many users included).
const MAX_FILE: u64 = 64 << 20;

/// Reads a file the config names: only a regular file, and at most [`MAX_FILE`]. A FIFO
/// without a writer would block `check` and a reload for ever, `/dev/zero` never end.
pub(crate) fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other("larger than 64 MiB"));
    }
    Ok(bytes)
}

/// One problem in a config file, located by key path and/or byte span.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub path: Option<KeyPath>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        match &self.path {
            Some(p) if !p.0.is_empty() => write!(f, "{p}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Every error found in a load, reported together.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A parsed config file. Errors are collected here while the file is read and validated.
pub(crate) struct SourceFile {
    pub path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
    errors: RefCell<Vec<ConfigError>>,
    warnings: RefCell<Vec<ConfigError>>,
    /// Values whose `${ENV}` could not be expanded: already reported, not checked again.
    unexpanded: RefCell<Vec<Range<usize>>>,
}

impl SourceFile {
    pub(crate) fn read(path: &Path) -> Result<Self, ConfigErrors> {
        let text = read_file(path).and_then(|b| {
            String::from_utf8(b).map_err(|_| std::io::Error::other("not UTF-8 text"))
        });
        let text = text.map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                path: None,
                message: format!("cannot read file: {e}"),
            }])
        })?;
        Ok(Self::from_text(path, text))
    }

    pub(crate) fn from_text(path: &Path, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path: path.to_path_buf(),
            text,
            line_starts,
            errors: RefCell::default(),
            warnings: RefCell::default(),
            unexpanded: RefCell::default(),
        }
    }

    /// The folder relative paths inside this file resolve against.
    pub(crate) fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Parses the text into a spanned tree (syntax errors recorded) and interpolates `${ENV}`.
    pub(crate) fn parse(&self) -> Option<DeTable<'_>> {
        let (table, errors) = DeTable::parse_recoverable(&self.text);
        for e in errors {
            self.error_at(e.span(), None, e.message().to_string());
        }
        if self.has_errors() {
            return None;
        }
        let mut table = table.into_inner();
        let mut env_errors = Vec::new();
        interpolate_table(&mut table, &KeyPath::root(), &mut env_errors);
        for (span, path, msg) in env_errors {
            self.error_at(Some(span.clone()), Some(path), msg);
            self.unexpanded.borrow_mut().push(span);
        }
        Some(table)
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        let col = self.text[self.line_starts[line]..offset.min(self.text.len())]
            .chars()
            .count();
        (line + 1, col + 1)
    }

    pub(crate) fn error_at(&self, span: Option<Range<usize>>, path: Option<KeyPath>, msg: String) {
        if span
            .as_ref()
            .is_some_and(|s| self.unexpanded.borrow().contains(s))
        {
            return;
        }
        let e = self.make(span, path, msg);
        self.errors.borrow_mut().push(e);
    }

    pub(crate) fn warn_at(&self, span: Option<Range<usize>>, path: Option<KeyPath>, msg: String) {
        let e = self.make(span, path, msg);
        self.warnings.borrow_mut().push(e);
    }

    /// Adds the errors of another file read on this one's behalf (users.toml).
    pub(crate) fn absorb(&self, errors: ConfigErrors) {
        self.errors.borrow_mut().extend(errors.0);
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    pub(crate) fn take_warnings(&self) -> Vec<ConfigError> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }

    fn make(
        &self,
        span: Option<Range<usize>>,
        path: Option<KeyPath>,
        message: String,
    ) -> ConfigError {
        let (line, col) = span.map(|s| self.position(s.start)).unwrap_or((1, 1));
        ConfigError {
            file: self.path.clone(),
            line,
            col,
            path,
            message,
        }
    }

    /// The errors in file order.
    pub(crate) fn take_errors(&self) -> ConfigErrors {
        let mut errors = std::mem::take(&mut *self.errors.borrow_mut());
        // This file's errors first, then those of the files it names.
        errors.sort_by(|a, b| {
            (a.file != self.path, &a.file, a.line, a.col).cmp(&(
                b.file != self.path,
                &b.file,
                b.line,
                b.col,
            ))
        });
        ConfigErrors(errors)
    }
}

/// Deserialises one subtree into its raw type. A serde error (unknown key, wrong type, missing
/// field) is recorded with its position and the deepest key path that contains it.
pub(crate) fn deserialize<T: DeserializeOwned>(
    src: &SourceFile,
    value: &Spanned<DeValue<'_>>,
    path: &KeyPath,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(v) => Some(v),
        Err(e) => {
            let span = e.span().unwrap_or_else(|| value.span());
            let located = locate(value, path, &span);
            // serde's messages name the key already; strip toml's trailing newline.
            let msg = e.message().trim().to_string();
            src.error_at(Some(span), Some(located), msg);
            None
        }
    }
}

/// The deepest key path under `value` whose key or value span contains `span`.
fn locate(value: &Spanned<DeValue<'_>>, path: &KeyPath, span: &Range<usize>) -> KeyPath {
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                if contains(&k.span(), span) {
                    return path.key(k.get_ref());
                }
                if contains(&v.span(), span) {
                    return locate(v, &path.key(k.get_ref()), span);
                }
            }
            path.clone()
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if contains(&v.span(), span) {
                    return locate(v, &path.index(i), span);
                }
            }
            path.clone()
        }
        _ => path.clone(),
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The span of the value at `path` below `table`, for reporting validation errors.
pub(crate) fn span_of(table: &DeTable<'_>, path: &KeyPath) -> Option<Range<usize>> {
    let mut segs = path.0.iter();
    let first = match segs.next()? {
        Seg::Key(k) => table.get(k.as_str())?,
        Seg::Index(_) => return None,
    };
    let mut cur = first;
    for seg in segs {
        let next = match (seg, cur.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str()),
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    Some(cur.span())
}

type EnvError = (Range<usize>, KeyPath, String);

fn interpolate_table(table: &mut DeTable<'_>, path: &KeyPath, errs: &mut Vec<EnvError>) {
    for (k, v) in table.iter_mut() {
        interpolate_value(v, &path.key(k.get_ref()), errs);
    }
}

/// What opens a variable in a string value.
const ENV_OPEN: &str = "${";

fn interpolate_value(v: &mut Spanned<DeValue<'_>>, path: &KeyPath, errs: &mut Vec<EnvError>) {
    let span = v.span();
    match v.get_mut() {
        DeValue::String(s) if s.contains(ENV_OPEN) => {
            match expand_env(s, |n| std::env::var(n).ok()) {
                Ok(expanded) => *s = expanded.into(),
                Err(msg) => errs.push((span, path.clone(), msg)),
            }
        }
        DeValue::Table(t) => interpolate_table(t, path, errs),
        DeValue::Array(a) => {
            for (i, item) in a.iter_mut().enumerate() {
                interpolate_value(item, &path.index(i), errs);
            }
        }
        _ => {}
    }
}

/// Replaces every `${NAME}` with the variable's value; a missing variable is an error naming it.
pub(crate) fn expand_env(
    s: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(ENV_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + ENV_OPEN.len()..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `{ENV_OPEN}` in string"))?;
        let name = &after[..end];
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!("invalid environment variable name `{name}`"));
        }
        match lookup(name) {
            Some(val) => out.push_str(&val),
            None => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        let env = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand_env("p${A}q${A}", env).unwrap(), "pxqx");
        assert!(expand_env("${B}", env).unwrap_err().contains("`B`"));
        assert!(expand_env("${A", env).is_err());
    }

    #[test]
    fn key_paths_display_like_toml() {
        let p = KeyPath::root()
            .key("routes")
            .index(2)
            .key("owner")
            .key("org.id");
        assert_eq!(p.to_string(), "routes[2].owner.\"org.id\"");
    }

    #[test]
    fn serde_errors_carry_position_and_path() {
        let src = SourceFile::from_text(
            Path::new("g.toml"),
            "[server]\nlisten = [\"a\"]\nbogus = 1\n".to_string(),
        );
        let table = src.parse().unwrap();
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            listen: Vec<String>,
        }
        let v = table.get("server").unwrap();
        assert!(deserialize::<S>(&src, v, &KeyPath::root().key("server")).is_none());
        let e = src.take_errors().0[0].to_string();
        assert!(
            e.starts_with("g.toml:3:1: server.bogus: unknown field `bogus`"),
            "{e}"
        );
    }
}
