//! The `afterbackup` job file: one TOML file says where the vault is, which site backup to
//! verify, what else a recovery point carries, how long to keep it, and where to log.
//! Unknown keys are refused, so a typo never silently drops a source or a retention rule.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::retention::{KeepWithin, Policy};
use crate::size::parse_budget;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub vault: VaultSection,
    pub site: SiteSection,
    #[serde(default)]
    pub sources: SourcesSection,
    pub retention: Option<RetentionSection>,
    pub log: Option<LogSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    pub repository: String,
    pub password_file: Option<PathBuf>,
    pub label: Option<String>,
    /// Storage options for s3:// and az:// vaults (`aws_region = "eu-west-1"`).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    /// Memory the index may take before it is kept on disk (`"32MiB"`, `"unlimited"`);
    /// checked by [`parse_budget`] when the config is read.
    pub index_memory: Option<String>,
    /// Vaults every new recovery point is copied to after the local archive succeeds.
    #[serde(default)]
    pub copy_to: Vec<String>,
    /// Storage options per copy target, keyed by its URL.
    #[serde(default)]
    pub copy_options:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSection {
    pub code: String,
    pub backup_folder: PathBuf,
    /// Where `smsbkup.log` is when it is not in the backup folder or its parent.
    pub backup_log: Option<PathBuf>,
    #[serde(default = "default_change_tracking_days")]
    pub change_tracking_days: u32,
}

fn default_change_tracking_days() -> u32 {
    5
}

/// One path or a list of them: `extra = 'E:\USMT'` and `extra = ['E:\USMT']` both work.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Paths {
    #[default]
    None,
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Paths {
    pub fn to_vec(&self) -> Vec<PathBuf> {
        match self {
            Paths::None => vec![],
            Paths::One(p) => vec![p.clone()],
            Paths::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    #[serde(default)]
    pub content_library: Paths,
    #[serde(default)]
    pub package_sources: Paths,
    /// Folder holding user profiles (`C:\Users`): every user's `Scupdb.sdf` below it.
    #[serde(default)]
    pub scup_profiles: Paths,
    #[serde(default)]
    pub extra: Paths,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(default)]
    pub keep_last: u32,
    #[serde(default)]
    pub keep_hourly: u32,
    #[serde(default)]
    pub keep_daily: u32,
    #[serde(default)]
    pub keep_weekly: u32,
    #[serde(default)]
    pub keep_monthly: u32,
    #[serde(default)]
    pub keep_yearly: u32,
    pub keep_within: Option<String>,
    #[serde(default)]
    pub keep_tags: Vec<String>,
    #[serde(default)]
    pub prune: bool,
    /// Like `prune --max-unused`, in percent; default 5.
    pub max_unused_percent: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub file: PathBuf,
}

/// What a source is, as named in snapshot tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    SiteBackup,
    ContentLibrary,
    PackageSources,
    Scup,
    Extra,
}

impl SourceKind {
    pub fn tag(self) -> &'static str {
        match self {
            SourceKind::SiteBackup => "site-backup",
            SourceKind::ContentLibrary => "content-library",
            SourceKind::PackageSources => "package-sources",
            SourceKind::Scup => "scup",
            SourceKind::Extra => "extra",
        }
    }
}

impl JobConfig {
    /// Read and validate `path`; errors name the file and the key at fault.
    pub fn load(path: &Path) -> Result<JobConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg = JobConfig::parse(&text, path)?;
        if let Some(dir) = path.parent() {
            cfg.resolve_relative(dir);
        }
        Ok(cfg)
    }

    /// Relative paths mean "next to the config file", not "wherever the batch file ran"
    /// (Configuration Manager starts AfterBackup.bat in its own inbox folder).
    pub(crate) fn resolve_relative(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        };
        let fix_all = |ps: &mut Paths| match ps {
            Paths::None => {}
            Paths::One(p) => fix(p),
            Paths::Many(v) => v.iter_mut().for_each(fix),
        };
        if !self.vault.repository.contains("://") {
            let mut r = PathBuf::from(&self.vault.repository);
            fix(&mut r);
            self.vault.repository = r.display().to_string();
        }
        if let Some(p) = &mut self.vault.password_file {
            fix(p);
        }
        // Folder copy targets too; options are keyed by the target as written, so re-key them.
        let fix_target = |t: &str| -> String {
            if t.contains("://") {
                t.to_string()
            } else {
                let mut p = PathBuf::from(t);
                fix(&mut p);
                p.display().to_string()
            }
        };
        self.vault.copy_to = self.vault.copy_to.iter().map(|t| fix_target(t)).collect();
        self.vault.copy_options = std::mem::take(&mut self.vault.copy_options)
            .into_iter()
            .map(|(k, v)| (fix_target(&k), v))
            .collect();
        fix(&mut self.site.backup_folder);
        if let Some(p) = &mut self.site.backup_log {
            fix(p);
        }
        fix_all(&mut self.sources.content_library);
        fix_all(&mut self.sources.package_sources);
        fix_all(&mut self.sources.scup_profiles);
        fix_all(&mut self.sources.extra);
        if let Some(l) = &mut self.log {
            fix(&mut l.file);
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<JobConfig> {
        let cfg: JobConfig = toml::from_str(text).map_err(|e| {
            Error::InvalidInput(format!(
                "config {}: {}",
                path.display(),
                e.to_string().trim().replace('\n', " ")
            ))
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |key: &str, why: &str| {
            Err(Error::InvalidInput(format!(
                "config {}: {key} {why}",
                path.display()
            )))
        };
        if self.vault.repository.trim().is_empty() {
            return bad("[vault] repository", "is empty; give the vault folder");
        }
        for t in self.vault.copy_options.keys() {
            if !self.vault.copy_to.contains(t) {
                return bad(
                    &format!("[vault.copy_options.\"{t}\"]"),
                    "names no copy_to target; the key must be one of the copy_to URLs exactly",
                );
            }
        }
        if self.vault.copy_to.contains(&self.vault.repository) {
            return bad("[vault] copy_to", "names the vault itself");
        }
        if let Some(Err(e)) = self.vault.index_memory.as_deref().map(parse_budget) {
            return bad("[vault] index_memory", &e);
        }
        let code = &self.site.code;
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad(
                "[site] code",
                "must be the three-character site code, like CEN",
            );
        }
        if self.site.backup_folder.as_os_str().is_empty() {
            return bad("[site] backup_folder", "is empty");
        }
        if let Some(r) = &self.retention {
            if let Some(w) = &r.keep_within {
                w.parse::<KeepWithin>().map_err(|e| {
                    Error::InvalidInput(format!(
                        "config {}: [retention] keep_within: {e}",
                        path.display()
                    ))
                })?;
            }
            if r.max_unused_percent
                .is_some_and(|p| !(0.0..=100.0).contains(&p))
            {
                return bad("[retention] max_unused_percent", "must be from 0 to 100");
            }
            if r.policy().is_empty() {
                return bad(
                    "[retention]",
                    "has no keep_* rule; give at least one, or remove the section to keep everything",
                );
            }
        }
        Ok(())
    }

    /// The snapshot label: the configured one, else `sccm-<site code>`.
    pub fn label(&self) -> String {
        self.vault
            .label
            .clone()
            .unwrap_or_else(|| format!("sccm-{}", self.site.code))
    }
}

impl RetentionSection {
    pub fn policy(&self) -> Policy {
        Policy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            // Validated at load.
            keep_within: self.keep_within.as_deref().and_then(|w| w.parse().ok()),
            keep_tags: self.keep_tags.clone(),
        }
    }

    pub fn max_unused(&self) -> f64 {
        self.max_unused_percent.unwrap_or(5.0) / 100.0
    }
}

/// Files and bytes below `path`, from metadata only: for the run log, before the backup
/// reads the data.
pub fn measure(path: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        if e.file_type().is_file() {
            files += 1;
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[vault]
repository = 'E:\Vault'
password_file = 'C:\ProgramData\sitevault\vault.pass'
label = "sccm-CEN"

[site]
code = "CEN"
backup_folder = 'E:\ConfigMgr_Backup\CENBackup'
change_tracking_days = 5

[sources]
content_library = ['D:\SCCMContentLib', 'F:\SCCMContentLibF']
package_sources = ['E:\Sources']
scup_profiles = 'C:\Users'
extra = ['E:\USMT', 'E:\ReportServerBackup']

[retention]
keep_last = 7
keep_daily = 14
keep_weekly = 8
keep_monthly = 12
keep_yearly = 3
prune = true

[log]
file = 'E:\ConfigMgr_Backup\sitevault.log'
"#;

    fn parse(t: &str) -> Result<JobConfig> {
        JobConfig::parse(t, Path::new("job.toml"))
    }

    #[test]
    fn the_documented_example_parses() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.vault.repository, r"E:\Vault");
        assert_eq!(c.label(), "sccm-CEN");
        assert_eq!(c.site.change_tracking_days, 5);
        assert_eq!(c.sources.content_library.to_vec().len(), 2);
        assert_eq!(
            c.sources.scup_profiles.to_vec(),
            vec![PathBuf::from(r"C:\Users")]
        );
        let r = c.retention.unwrap();
        assert!(r.prune);
        assert_eq!(r.policy().keep_daily, 14);
        assert_eq!(r.max_unused(), 0.05);
        assert_eq!(
            c.log.unwrap().file,
            PathBuf::from(r"E:\ConfigMgr_Backup\sitevault.log")
        );
    }

    #[test]
    fn index_memory_takes_a_size_or_unlimited_and_names_a_bad_one() {
        let with = |v: &str| FULL.replace("label = ", &format!("index_memory = {v:?}\nlabel = "));
        assert_eq!(
            parse(&with("64MiB")).unwrap().vault.index_memory.as_deref(),
            Some("64MiB")
        );
        parse(&with("unlimited")).unwrap();
        let e = parse(&with("lots")).unwrap_err().to_string();
        assert!(
            e.contains("[vault] index_memory") && e.contains("unlimited"),
            "{e}"
        );
    }

    #[test]
    fn relative_paths_are_next_to_the_config_file() {
        let mut c = parse(
            "[vault]\nrepository = 'vault'\npassword_file = 'pw'\n[site]\ncode = 'CEN'\nbackup_folder = 'bk'\n[sources]\nextra = ['x', '/abs']\n[log]\nfile = 'run.log'\n",
        )
        .unwrap();
        c.resolve_relative(Path::new("/etc/sv"));
        // Joined with the platform's separator (`/etc/sv\vault` on Windows).
        let want = Path::new("/etc/sv").join("vault");
        assert_eq!(c.vault.repository, want.display().to_string());
        assert_eq!(c.vault.password_file, Some(PathBuf::from("/etc/sv/pw")));
        assert_eq!(c.site.backup_folder, PathBuf::from("/etc/sv/bk"));
        assert_eq!(
            c.sources.extra.to_vec(),
            vec![PathBuf::from("/etc/sv/x"), PathBuf::from("/abs")]
        );
        assert_eq!(c.log.unwrap().file, PathBuf::from("/etc/sv/run.log"));
        // URLs are left alone.
        let mut c = parse(
            "[vault]\nrepository = 's3://b/p'\n[site]\ncode = 'CEN'\nbackup_folder = '/bk'\n",
        )
        .unwrap();
        c.resolve_relative(Path::new("/etc/sv"));
        assert_eq!(c.vault.repository, "s3://b/p");
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../examples/sitevault.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.site.code, "CEN");
        assert_eq!(c.sources.extra.to_vec().len(), 2);
        assert!(c.retention.is_some_and(|r| r.prune));
    }

    #[test]
    fn minimal_config_has_defaults() {
        let c = parse("[vault]\nrepository = 'v'\n[site]\ncode = 'PS1'\nbackup_folder = 'b'\n")
            .unwrap();
        assert_eq!(c.label(), "sccm-PS1");
        assert_eq!(c.site.change_tracking_days, 5);
        assert!(c.retention.is_none() && c.log.is_none());
        assert!(c.sources.extra.to_vec().is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                "[vault]\nrepository='v'\n[site]\ncode='CEN'\nbackup_folder='b'\nbackup_foldr='x'\n",
                "backup_foldr",
            ),
            ("[vault]\nrepository='v'\n", "site"),
            (
                "[vault]\nrepository='v'\n[site]\ncode='CENTRAL'\nbackup_folder='b'\n",
                "[site] code",
            ),
            (
                "[vault]\nrepository='v'\n[site]\ncode='CEN'\nbackup_folder='b'\n[retention]\nprune=true\n",
                "no keep_* rule",
            ),
            (
                "[vault]\nrepository='v'\n[site]\ncode='CEN'\nbackup_folder='b'\n[retention]\nkeep_within='5x'\n",
                "keep_within",
            ),
            (
                "[vault]\nrepository='v'\n[site]\ncode='CEN'\nbackup_folder='b'\n[retention]\nkeep_last=-1\n",
                "keep_last",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains("job.toml") && e.contains(want), "{want}: {e}");
        }
    }
}
