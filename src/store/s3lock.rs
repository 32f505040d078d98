//! S3 Object Lock: the requests `object_store` does not make (a PUT with retention headers,
//! PutObjectRetention, HEAD of a version, GetObjectLockConfiguration, ListObjectVersions and
//! DeleteObject of one version), signed with `object_store`'s own SigV4 signer and sent with its
//! HTTP client, so credentials, endpoints and TLS behave exactly as for every other request.
//!
//! Part of the store layer: async inside, driven by the backend's runtime.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use jiff::Timestamp;
use md5::Digest;
use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::signer::Signer;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::format::config::{Immutable, LockMode};

/// What the bucket says about Object Lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Enabled,
    /// The bucket was created without Object Lock (it cannot be turned on for a vault's
    /// objects afterwards without versioning and a new configuration).
    NotEnabled,
}

/// One version (or delete marker) of one object, from ListObjectVersions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Name relative to the vault root.
    pub name: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub modified: Timestamp,
    pub size: u64,
}

/// One page of a ListObjectVersions reply.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionList {
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_version_id_marker: Option<String>,
    #[serde(rename = "$value", default)]
    entries: Vec<VersionEntry>,
}

/// An element of a ListObjectVersions reply.
#[derive(Deserialize)]
enum VersionEntry {
    Version(VersionXml),
    DeleteMarker(VersionXml),
    #[serde(other)]
    Other,
}

/// A `<Version>` or `<DeleteMarker>` element.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionXml {
    key: String,
    version_id: String,
    is_latest: bool,
    last_modified: String,
    #[serde(default)]
    size: u64,
}

/// How deleting one version went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionDelete {
    Deleted,
    /// Refused: its retention has not expired.
    Locked,
}

/// Raw S3 requests for one bucket and vault prefix.
pub struct S3Lock {
    s3: AmazonS3,
    http: HttpClient,
    region: String,
    /// `https://host/bucket` or `https://bucket.host`, no trailing slash.
    bucket_url: String,
    /// The vault's prefix inside the bucket, with a trailing `/` (or empty).
    prefix: String,
    sign_payload: bool,
    runtime: Arc<tokio::runtime::Runtime>,
    /// The retention every object written gets, once the vault's config says so.
    policy: OnceLock<Immutable>,
    location: String,
}

struct Resp {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

/// Bytes of a name or query value that may stay as they are in a URL.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// S3's timestamp form for retention dates: whole seconds, `Z` (moto and AWS both accept it).
fn s3_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// The `<Code>` and `<Message>` of an S3 error body, for messages.
fn s3_error(body: &[u8]) -> String {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    let e: E = quick_xml::de::from_reader(body).unwrap_or_default();
    match (e.code, e.message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

impl S3Lock {
    /// `s3` is the bucket's client (without the vault prefix); `options` the same client
    /// options the backend uses.
    pub(crate) fn new(
        s3: AmazonS3,
        region: String,
        prefix: &str,
        sign_payload: bool,
        options: &object_store::ClientOptions,
        runtime: Arc<tokio::runtime::Runtime>,
        location: &str,
    ) -> Result<S3Lock> {
        let bad = |e: String| Error::InvalidInput(format!("repository {location}: {e}"));
        let http = ReqwestConnector::default()
            .connect(options)
            .map_err(|e| bad(e.to_string()))?;
        // The bucket's URL as object_store forms it (path or virtual-host style, any endpoint):
        // sign a probe path and take the path off.
        let probe = runtime
            .block_on(s3.signed_url(
                http::Method::GET,
                &object_store::path::Path::from("sitevault-probe"),
                Duration::from_secs(60),
            ))
            .map_err(|e| bad(e.to_string()))?;
        let mut u = probe;
        u.set_query(None);
        let bucket_url = u
            .as_str()
            .strip_suffix("/sitevault-probe")
            .ok_or_else(|| bad(format!("unexpected bucket URL {u}")))?
            .to_string();
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(S3Lock {
            s3,
            http,
            region,
            bucket_url,
            prefix,
            sign_payload,
            runtime,
            policy: OnceLock::new(),
            location: location.to_string(),
        })
    }

    fn err(&self, name: &str, detail: impl Into<String>) -> Error {
        Error::Store {
            object: format!("{}/{name}", self.location),
            detail: detail.into(),
        }
    }

    /// Send one signed request, retrying throttling, server errors and (for idempotent
    /// requests) lost connections.
    fn send(
        &self,
        method: http::Method,
        path_query: &str,
        headers: &[(&str, String)],
        body: Bytes,
        idempotent: bool,
    ) -> std::result::Result<Resp, String> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self.runtime.block_on(self.send_once(
                method.clone(),
                path_query,
                headers,
                body.clone(),
            ));
            let retry = match &r {
                Ok(resp) => resp.status == 429 || resp.status >= 500,
                Err(_) => idempotent,
            };
            if !retry || attempt >= 6 {
                return r;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn send_once(
        &self,
        method: http::Method,
        path_query: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> std::result::Result<Resp, String> {
        let url = format!("{}{path_query}", self.bucket_url);
        let mut b = http::Request::builder().method(method).uri(url.as_str());
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        if !body.is_empty() {
            // Object Lock requests must carry Content-MD5 (or another checksum).
            let d = md5::Md5::digest(&body);
            b = b.header(
                "content-md5",
                base64::engine::general_purpose::STANDARD.encode(d),
            );
        }
        let mut req = b
            .body(HttpRequestBody::from(body))
            .map_err(|e| e.to_string())?;
        let cred = object_store::CredentialProvider::get_credential(self.s3.credentials().as_ref())
            .await
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(&cred, "s3", &self.region)
            .with_sign_payload(self.sign_payload)
            .try_authorize(&mut req, None)
            .map_err(|e| e.to_string())?;
        let resp = self.http.execute(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = body.bytes().await.map_err(|e| e.to_string())?;
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    fn key(&self, name: &str) -> String {
        format!("/{}", encode(&format!("{}{name}", self.prefix), true))
    }

    /// GetObjectLockConfiguration.
    pub fn state(&self) -> Result<LockState> {
        let r = self
            .send(http::Method::GET, "/?object-lock", &[], Bytes::new(), true)
            .map_err(|e| self.err("?object-lock", e))?;
        match r.status {
            200 => {
                #[derive(Deserialize)]
                #[serde(rename_all = "PascalCase")]
                struct C {
                    object_lock_enabled: Option<String>,
                }
                let c: C = quick_xml::de::from_reader(r.body.as_ref())
                    .map_err(|e| self.err("?object-lock", e.to_string()))?;
                Ok(if c.object_lock_enabled.as_deref() == Some("Enabled") {
                    LockState::Enabled
                } else {
                    LockState::NotEnabled
                })
            }
            404 if s3_error(&r.body).starts_with("ObjectLockConfigurationNotFound") => {
                Ok(LockState::NotEnabled)
            }
            403 => Err(self.err(
                "?object-lock",
                format!(
                    "access denied reading the bucket's Object Lock configuration ({}); the credentials need s3:GetBucketObjectLockConfiguration",
                    s3_error(&r.body)
                ),
            )),
            s => Err(self.err(
                "?object-lock",
                format!("HTTP {s}: {}", s3_error(&r.body)),
            )),
        }
    }

    /// From now on every object written but locks gets `policy`'s retention.
    pub(crate) fn set_policy(&self, policy: Immutable) {
        let _ = self.policy.set(policy);
    }

    pub fn policy(&self) -> Option<Immutable> {
        self.policy.get().copied()
    }

    /// Create-only PUT with a retention until `until`: `Ok(false)` when the object exists.
    pub(crate) fn put_locked(
        &self,
        name: &str,
        data: Bytes,
        mode: LockMode,
        until: Timestamp,
    ) -> Result<bool> {
        let headers = [
            ("x-amz-object-lock-mode", mode.s3().to_string()),
            ("x-amz-object-lock-retain-until-date", s3_time(until)),
            ("if-none-match", "*".to_string()),
            ("content-type", "application/octet-stream".to_string()),
        ];
        // Retried after a lost reply too: a second attempt finds the first one's object (412),
        // and every name but `config` is content-addressed, so that object holds these bytes.
        let r = self
            .send(http::Method::PUT, &self.key(name), &headers, data, true)
            .map_err(|e| self.err(name, e))?;
        match r.status {
            200 | 201 => Ok(true),
            412 => Ok(false),
            s => Err(self.err(
                name,
                format!("locked upload failed: HTTP {s}: {}", s3_error(&r.body)),
            )),
        }
    }

    /// The retention of `name`'s current version (or of `version`), `None` when it has none.
    pub fn retention(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<(LockMode, Timestamp)>> {
        let q = match version {
            Some(v) => format!("{}?versionId={}", self.key(name), encode(v, false)),
            None => self.key(name),
        };
        let r = self
            .send(http::Method::HEAD, &q, &[], Bytes::new(), true)
            .map_err(|e| self.err(name, e))?;
        if r.status == 404 {
            return Err(self.err(name, "not found"));
        }
        if r.status != 200 {
            return Err(self.err(name, format!("HTTP {} reading its retention", r.status)));
        }
        let h = |k: &str| r.headers.get(k).and_then(|v| v.to_str().ok());
        let mode = match h("x-amz-object-lock-mode") {
            Some("GOVERNANCE") => LockMode::Governance,
            Some("COMPLIANCE") => LockMode::Compliance,
            _ => return Ok(None),
        };
        let until = h("x-amz-object-lock-retain-until-date")
            .and_then(parse_time)
            .ok_or_else(|| self.err(name, "retention without a valid retain-until date"))?;
        Ok(Some((mode, until)))
    }

    /// PutObjectRetention: keep `name` (its current version, or `version`) until `until`.
    /// Never shortens: callers pass a later date than the current one.
    pub fn extend(
        &self,
        name: &str,
        version: Option<&str>,
        mode: LockMode,
        until: Timestamp,
    ) -> Result<()> {
        let mut q = format!("{}?retention", self.key(name));
        if let Some(v) = version {
            q.push_str(&format!("&versionId={}", encode(v, false)));
        }
        let xml = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode.s3(),
            s3_time(until)
        );
        let r = self
            .send(
                http::Method::PUT,
                &q,
                &[("content-type", "application/xml".to_string())],
                Bytes::from(xml),
                true,
            )
            .map_err(|e| self.err(name, e))?;
        match r.status {
            200 | 204 => Ok(()),
            s => Err(self.err(
                name,
                format!(
                    "extending its retention failed: HTTP {s}: {}",
                    s3_error(&r.body)
                ),
            )),
        }
    }

    /// Every version and delete marker under `prefix` (relative to the vault).
    pub fn versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let full = format!("{}{prefix}", self.prefix);
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let l = self.versions_page(prefix, &full, markers.as_ref())?;
            self.push_versions(l.entries, &mut out);
            match (l.is_truncated, l.next_key_marker, l.next_version_id_marker) {
                (true, Some(k), Some(v)) => markers = Some((k, v)),
                (true, Some(k), None) => markers = Some((k, String::new())),
                _ => break,
            }
        }
        Ok(out)
    }

    /// One ListObjectVersions page under `full` (the bucket key prefix), from `markers` on.
    fn versions_page(
        &self,
        prefix: &str,
        full: &str,
        markers: Option<&(String, String)>,
    ) -> Result<VersionList> {
        let mut q = format!("/?versions&prefix={}", encode(full, false));
        if let Some((k, v)) = markers {
            q.push_str(&format!(
                "&key-marker={}&version-id-marker={}",
                encode(k, false),
                encode(v, false)
            ));
        }
        let r = self
            .send(http::Method::GET, &q, &[], Bytes::new(), true)
            .map_err(|e| self.err(prefix, e))?;
        if r.status != 200 {
            return Err(self.err(
                prefix,
                format!(
                    "listing versions failed: HTTP {}: {}",
                    r.status,
                    s3_error(&r.body)
                ),
            ));
        }
        quick_xml::de::from_reader(r.body.as_ref())
            .map_err(|e| self.err(prefix, format!("listing versions: {e}")))
    }

    /// Add the versions and delete markers of one page inside the vault's prefix to `out`.
    fn push_versions(&self, entries: Vec<VersionEntry>, out: &mut Vec<ObjectVersion>) {
        for e in entries {
            let (v, marker) = match e {
                VersionEntry::Version(v) => (v, false),
                VersionEntry::DeleteMarker(v) => (v, true),
                VersionEntry::Other => continue,
            };
            let Some(name) = v.key.strip_prefix(&self.prefix) else {
                continue;
            };
            out.push(ObjectVersion {
                name: name.to_string(),
                version_id: v.version_id,
                is_latest: v.is_latest,
                delete_marker: marker,
                modified: parse_time(&v.last_modified).unwrap_or(Timestamp::UNIX_EPOCH),
                size: v.size,
            });
        }
    }

    /// Delete one version for good (no bypass of governance retention).
    pub fn delete_version(&self, name: &str, version: &str) -> Result<VersionDelete> {
        let q = format!("{}?versionId={}", self.key(name), encode(version, false));
        let r = self
            .send(http::Method::DELETE, &q, &[], Bytes::new(), true)
            .map_err(|e| self.err(name, e))?;
        match r.status {
            200 | 204 | 404 => Ok(VersionDelete::Deleted),
            403 => Ok(VersionDelete::Locked),
            s => Err(self.err(
                name,
                format!("deleting a version failed: HTTP {s}: {}", s3_error(&r.body)),
            )),
        }
    }

    /// Read one version of an object, whole or a byte range of it.
    pub(crate) fn get_version(
        &self,
        name: &str,
        version: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Bytes> {
        let q = format!("{}?versionId={}", self.key(name), encode(version, false));
        let headers: Vec<(&str, String)> = match &range {
            Some(r) if r.end > r.start => {
                vec![("range", format!("bytes={}-{}", r.start, r.end - 1))]
            }
            Some(_) => return Ok(Bytes::new()),
            None => Vec::new(),
        };
        let r = self
            .send(http::Method::GET, &q, &headers, Bytes::new(), true)
            .map_err(|e| self.err(name, e))?;
        match (r.status, &range) {
            (200, None) | (206, Some(_)) => Ok(r.body),
            // A server that ignores Range sends the whole object.
            (200, Some(rg)) if (r.body.len() as u64) >= rg.end => {
                Ok(r.body.slice(rg.start as usize..rg.end as usize))
            }
            (s, _) => Err(self.err(
                name,
                format!(
                    "reading version {version} failed: HTTP {s}: {}",
                    s3_error(&r.body)
                ),
            )),
        }
    }
}

impl LockMode {
    /// The value S3's headers and XML use.
    pub fn s3(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Retention is extended this long beyond the `days` the vault promises, so an object needs
/// a new date only every few runs rather than every night: a quarter of `days`, at least one.
pub(crate) fn slack_days(policy: &Immutable) -> u32 {
    (policy.days / 4).max(1)
}

/// When an object written (or extended) now must be retained until: `days` plus the slack
/// from now, to the second.
pub(crate) fn retain_until(policy: &Immutable, now: Timestamp) -> Timestamp {
    let secs = i64::from(policy.days + slack_days(policy)) * 86_400;
    now.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}

/// The date every needed object must be retained until at least, now: `days` from now.
pub(crate) fn must_hold_until(policy: &Immutable, now: Timestamp) -> Timestamp {
    let secs = i64::from(policy.days) * 86_400;
    now.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}
