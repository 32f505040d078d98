//! Path patterns for `restore --include/--exclude` and `find`.
//!
//! A pattern without a separator matches an entry's name at any depth (`*.mdf`, `Scupdb.sdf`);
//! a pattern with one (`/` or `\`) matches the original absolute path. Windows snapshots match
//! without regard to case. `*` and `?` stay within one path component; `**` crosses them.

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};
use crate::paths::PathStyle;

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    /// Matches the whole path (`true`) or only the name.
    whole_path: bool,
    exact: GlobMatcher,
    caseless: GlobMatcher,
}

fn build(text: &str, caseless: bool) -> Result<GlobMatcher> {
    let normalised = text.replace('\\', "/");
    let g: Glob = GlobBuilder::new(&normalised)
        .literal_separator(true)
        .case_insensitive(caseless)
        .backslash_escape(false)
        .build()
        .map_err(|e| {
            Error::InvalidInput(format!(
                "pattern {text:?} is not a valid glob ({e}); use *, ?, ** and [...]"
            ))
        })?;
    Ok(g.compile_matcher())
}

impl Pattern {
    fn new(text: &str) -> Result<Pattern> {
        if text.is_empty() {
            return Err(Error::InvalidInput(
                "an empty pattern matches nothing; give a name like *.mdf or a path".into(),
            ));
        }
        Ok(Pattern {
            text: text.to_string(),
            whole_path: text.contains(['/', '\\']),
            exact: build(text, false)?,
            caseless: build(text, true)?,
        })
    }

    /// `path` is the display path with `/` separators; `name` its last component.
    fn matches(&self, style: PathStyle, path: &str, name: &str) -> bool {
        let m = match style {
            PathStyle::Windows => &self.caseless,
            PathStyle::Unix => &self.exact,
        };
        if self.whole_path {
            // Windows display paths start with a drive (`E:/x`) or `//server/share`; a
            // pattern may also be written without the leading slash on Unix.
            m.is_match(path)
                || (style == PathStyle::Unix && m.is_match(path.trim_start_matches('/')))
        } else {
            m.is_match(name)
        }
    }
}

/// Which entries of a snapshot a command selects.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    includes: Vec<Pattern>,
    excludes: Vec<Pattern>,
    /// Entries included by their exact components (the console's checkboxes): no glob
    /// escaping, and names need not be UTF-8.
    exact: Vec<Vec<Vec<u8>>>,
}

impl PathFilter {
    pub fn new(includes: &[String], excludes: &[String]) -> Result<PathFilter> {
        Ok(PathFilter {
            includes: includes
                .iter()
                .map(|p| Pattern::new(p))
                .collect::<Result<_>>()?,
            excludes: excludes
                .iter()
                .map(|p| Pattern::new(p))
                .collect::<Result<_>>()?,
            exact: Vec::new(),
        })
    }

    /// Select exactly these entries (root-tree components each) and what is below them.
    pub fn exact(paths: Vec<Vec<Vec<u8>>>) -> PathFilter {
        PathFilter {
            exact: paths,
            ..PathFilter::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.includes.is_empty() && self.excludes.is_empty() && self.exact.is_empty()
    }

    /// The patterns as given, for messages.
    pub fn describe(&self) -> String {
        let inc: Vec<&str> = self.includes.iter().map(|p| p.text.as_str()).collect();
        let exc: Vec<&str> = self.excludes.iter().map(|p| p.text.as_str()).collect();
        if !self.exact.is_empty() {
            let paths: Vec<String> = self
                .exact
                .iter()
                .map(|c| {
                    let refs: Vec<&[u8]> = c.iter().map(|x| x.as_slice()).collect();
                    String::from_utf8_lossy(&PathStyle::Unix.join(&refs)).into_owned()
                })
                .collect();
            return format!("the paths {paths:?}");
        }
        format!("include {inc:?}, exclude {exc:?}")
    }

    /// Whether one path (its components, in the snapshot's style) matches any include pattern
    /// on its own, ignoring ancestors.
    pub(crate) fn matches_include(&self, style: PathStyle, comps: &[&[u8]]) -> bool {
        let exact = self.exact.iter().any(|e| {
            e.len() == comps.len() && e.iter().zip(comps).all(|(a, b)| style.same_name(a, b))
        });
        if exact {
            return true;
        }
        let (path, name) = texts(style, comps);
        self.includes.iter().any(|p| p.matches(style, &path, &name))
    }

    fn matches_exclude(&self, style: PathStyle, comps: &[&[u8]]) -> bool {
        let (path, name) = texts(style, comps);
        self.excludes.iter().any(|p| p.matches(style, &path, &name))
    }

    /// Whether the entry at `comps` is selected: it or an ancestor matches an include (or there
    /// are no includes), and neither it nor an ancestor matches an exclude. A directory match
    /// brings its whole subtree.
    pub fn selects(&self, style: PathStyle, comps: &[&[u8]]) -> bool {
        let prefixes = || (1..=comps.len()).map(|n| &comps[..n]);
        let included = (self.includes.is_empty() && self.exact.is_empty())
            || prefixes().any(|c| self.matches_include(style, c));
        included && !prefixes().any(|c| self.matches_exclude(style, c))
    }
}

/// The display path with `/` separators, and the last component, both lossily as UTF-8.
fn texts(style: PathStyle, comps: &[&[u8]]) -> (String, String) {
    let joined = style.join(comps);
    let mut path = String::from_utf8_lossy(&joined).into_owned();
    if style == PathStyle::Windows {
        path = path.replace('\\', "/");
    }
    let name = comps
        .last()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    (path, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(inc: &[&str], exc: &[&str]) -> PathFilter {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PathFilter::new(&s(inc), &s(exc)).unwrap()
    }

    fn c(path: &str) -> Vec<&[u8]> {
        path.split('|').map(str::as_bytes).collect()
    }

    #[test]
    fn exact_paths_select_themselves_and_what_is_below() {
        let p = PathFilter::exact(vec![vec![b"E:".to_vec(), b"Site[1]*".to_vec()]]);
        let w = PathStyle::Windows;
        assert!(p.selects(w, &c("E:|Site[1]*")));
        assert!(p.selects(w, &c("e:|site[1]*|x.mdf")), "caseless on Windows");
        assert!(!p.selects(w, &c("E:|Site1x")), "no glob meaning");
        assert!(!p.selects(w, &c("E:")), "a parent is not selected");
        assert!(!p.is_empty());
    }

    #[test]
    fn names_match_at_any_depth_and_paths_match_whole() {
        let w = PathStyle::Windows;
        let u = PathStyle::Unix;
        let p = f(&["*.mdf"], &[]);
        assert!(p.selects(w, &c("E:|Backup|SiteDBServer|CM_CEN.mdf")));
        assert!(
            p.selects(w, &c("E:|Backup|SiteDBServer|CM_CEN.MDF")),
            "caseless on Windows"
        );
        assert!(!p.selects(u, &c("srv|db|x.MDF")), "case matters on Unix");
        assert!(!p.selects(w, &c("E:|Backup|SiteDBServer|CM_CEN.ldf")));
        let p = f(&["E:/Backup/SiteServer"], &[]);
        assert!(
            p.selects(w, &c("E:|Backup|SiteServer|x|y.txt")),
            "subtree of a dir match"
        );
        assert!(!p.selects(w, &c("E:|Backup|SiteDBServer|a.mdf")));
        let p = f(&[r"e:\backup\*\*.log"], &[]);
        assert!(p.selects(w, &c("E:|Backup|SiteServer|smsbkup.log")));
        assert!(
            !p.selects(w, &c("E:|Backup|SiteServer|deep|smsbkup.log")),
            "* stays in one component"
        );
        let p = f(&["/srv/**/*.sdf"], &[]);
        assert!(p.selects(u, &c("srv|users|a|Scupdb.sdf")));
        let p = f(&["srv/data"], &[]);
        assert!(
            p.selects(u, &c("srv|data|f")),
            "leading slash optional on Unix"
        );
    }

    #[test]
    fn excludes_win_and_apply_to_subtrees() {
        let w = PathStyle::Windows;
        let p = f(&["E:/Sources"], &["*.iso", "E:/Sources/old"]);
        assert!(p.selects(w, &c("E:|Sources|app|setup.exe")));
        assert!(!p.selects(w, &c("E:|Sources|app|disk.ISO")));
        assert!(!p.selects(w, &c("E:|Sources|old|a|b.txt")));
        assert!(!p.selects(w, &c("D:|Other|x")));
        let all = f(&[], &["SCCMContentLib"]);
        assert!(all.selects(w, &c("E:|Backup|x")));
        assert!(!all.selects(w, &c("D:|SCCMContentLib|FileLib|AB|ABCD")));
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = PathFilter::new(&["[a-".into()], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"[a-\""), "{e}");
        assert!(PathFilter::new(&["".into()], &[]).is_err());
    }
}
