//! Opening a cloud store: sitevault's own options, the S3 and Azure clients with their keys,
//! the vault's prefix, the runtime, and the S3 Object Lock client.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3ConfigKey};

use super::backend::{
    DEFAULT_CONNECTIONS, DEFAULT_DOWNLOADS, DEFAULT_MULTIPART, MIN_PART_SIZE, Multipart,
};
use super::s3lock::S3Lock;
use super::{Location, ObjectStoreBackend, StoreOptions, parse_count};
use crate::error::{Error, Result};

impl ObjectStoreBackend {
    /// A vault in an S3 bucket or Azure container, under `prefix`.
    pub fn cloud(repo: &str, loc: &Location, options: &StoreOptions) -> Result<ObjectStoreBackend> {
        let own = OwnOptions::parse(repo, &options.explicit)?;
        let mut pending_lock = None;
        let store: Arc<dyn ObjectStore> = match loc {
            Location::S3 { bucket, .. } => {
                let (s3, lock) = s3(repo, bucket, &options.environment, &own.rest)?;
                pending_lock = Some(lock);
                Arc::new(s3)
            }
            Location::Azure { container, .. } => {
                azure(repo, container, &options.environment, &own.rest)?
            }
            Location::Folder(_) => {
                return Err(Error::InvalidInput(format!(
                    "{repo} is a folder, not a URL"
                )));
            }
        };
        let prefix = match loc {
            Location::S3 { prefix, .. } | Location::Azure { prefix, .. } => prefix.clone(),
            Location::Folder(_) => String::new(),
        };
        let inner = under_prefix(store, &prefix);
        let runtime = Arc::new(runtime()?);
        let location = repo.trim_end_matches('/').to_string();
        let s3lock = match pending_lock {
            Some(p) => Some(p.open(&prefix, runtime.clone(), &location)?),
            None => None,
        };
        Ok(ObjectStoreBackend {
            inner,
            location,
            runtime: Some(runtime),
            connections: own.connections,
            downloads: own.downloads,
            multipart: Some(own.multipart),
            extra_puts: Default::default(),
            multipart_uploads: Default::default(),
            s3lock,
            root: None,
        })
    }
}

/// A cloud store's options: sitevault's own, and the rest, which go to object_store.
struct OwnOptions {
    connections: usize,
    downloads: usize,
    multipart: Multipart,
    rest: Vec<(String, String)>,
}

impl OwnOptions {
    /// Take sitevault's own options out of `explicit`, checking each.
    fn parse(repo: &str, explicit: &[(String, String)]) -> Result<OwnOptions> {
        // `connections`, `download_connections` and `multipart_*` are sitevault's own; the rest go to
        // object_store.
        let mut own = OwnOptions {
            connections: DEFAULT_CONNECTIONS,
            downloads: DEFAULT_DOWNLOADS,
            multipart: DEFAULT_MULTIPART,
            rest: Vec::new(),
        };
        let size = |k: &str, v: &str| {
            crate::size::parse_size(v)
                .map_err(|e| Error::InvalidInput(format!("repository {repo}: {k}: {e}")))
        };
        let count = |k: &str, v: &str| parse_count(repo, k, v);
        for (k, v) in explicit {
            match k.as_str() {
                "connections" => own.connections = count(k, v)?,
                "download_connections" => own.downloads = count(k, v)?,
                "multipart_threshold" => own.multipart.threshold = size(k, v)?,
                "multipart_part_size" => {
                    own.multipart.part_size = size(k, v)?;
                    if !(MIN_PART_SIZE..=(4 << 30)).contains(&own.multipart.part_size) {
                        return Err(Error::InvalidInput(format!(
                            "repository {repo}: multipart_part_size={v:?}: give a size from 5MiB to 4GiB (S3's limits)"
                        )));
                    }
                }
                _ => own.rest.push((k.clone(), v.clone())),
            }
        }
        Ok(own)
    }
}

/// A client that cannot be built from the options given.
fn bad_config(repo: &str, e: object_store::Error) -> Error {
    Error::InvalidInput(format!("repository {repo}: {e}"))
}

/// An explicit option the backend does not know.
fn unknown_key(repo: &str, k: &str) -> Error {
    Error::InvalidInput(format!(
        "repository {repo}: unknown option {k:?}; see the README's list of storage options"
    ))
}

/// What the S3 Object Lock client needs, once the runtime exists.
struct PendingLock {
    s3: AmazonS3,
    region: String,
    signed: bool,
    client: object_store::ClientOptions,
}

impl PendingLock {
    /// The Object Lock client for the vault under `prefix`.
    fn open(
        self,
        prefix: &str,
        runtime: Arc<tokio::runtime::Runtime>,
        location: &str,
    ) -> Result<S3Lock> {
        S3Lock::new(
            self.s3,
            self.region,
            prefix,
            self.signed,
            &self.client,
            runtime,
            location,
        )
    }
}

/// The S3 client for `bucket` (without the vault prefix), and what its Object Lock client needs.
fn s3(
    repo: &str,
    bucket: &str,
    environment: &[(String, String)],
    explicit: &[(String, String)],
) -> Result<(AmazonS3, PendingLock)> {
    use AmazonS3ConfigKey as Key;
    let mut b = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_client_options(client_options());
    let given = s3_keys(repo, environment, explicit)?;
    // Over HTTPS, TLS protects the bytes in transit and every blob is authenticated
    // end to end (formats/ §5), so signing a SHA-256 of each body only costs a pass
    // over every byte; over plain HTTP the signature is the only transit check.
    // Like rclone: unsigned over HTTPS, signed over HTTP, unless the user says.
    if !given.iter().any(|(k, _)| *k == Key::UnsignedPayload) {
        let http = given
            .iter()
            .any(|(k, v)| *k == Key::Endpoint && v.to_ascii_lowercase().starts_with("http://"));
        b = b.with_config(Key::UnsignedPayload, (!http).to_string());
    }
    let mut lock_client = client_options();
    for (key, v) in given {
        if let Key::Client(ck) = key {
            lock_client = lock_client.with_config(ck, v);
        }
        b = b.with_config(key, v);
    }
    // Create-only puts (If-None-Match) keep locks and objects race-free (formats/).
    let s3 = b
        .clone()
        .with_retry(retry())
        .build()
        .map_err(|e| bad_config(repo, e))?;
    let region = b
        .get_config_value(&Key::Region)
        .unwrap_or_else(|| "us-east-1".into());
    let signed = b.get_config_value(&Key::UnsignedPayload).as_deref() != Some("true");
    let lock = PendingLock {
        s3: s3.clone(),
        region,
        signed,
        client: lock_client,
    };
    Ok((s3, lock))
}

/// The S3 configuration keys given: those the environment names that S3 knows, then the
/// explicit ones, each of which must be known.
fn s3_keys<'a>(
    repo: &str,
    environment: &'a [(String, String)],
    explicit: &'a [(String, String)],
) -> Result<Vec<(AmazonS3ConfigKey, &'a str)>> {
    let mut given: Vec<(AmazonS3ConfigKey, &str)> = Vec::new();
    for (k, v) in environment {
        if let Ok(key) = k.parse::<AmazonS3ConfigKey>() {
            given.push((key, v));
        }
    }
    for (k, v) in explicit {
        given.push((
            k.to_ascii_lowercase()
                .parse()
                .map_err(|_| unknown_key(repo, k))?,
            v,
        ));
    }
    Ok(given)
}

/// The Azure client for `container` (without the vault prefix).
fn azure(
    repo: &str,
    container: &str,
    environment: &[(String, String)],
    explicit: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>> {
    let mut b = object_store::azure::MicrosoftAzureBuilder::new()
        .with_container_name(container)
        .with_client_options(client_options());
    for (k, v) in environment {
        if let Ok(key) = k.parse::<object_store::azure::AzureConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    for (k, v) in explicit {
        let key: object_store::azure::AzureConfigKey = k
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| unknown_key(repo, k))?;
        b = b.with_config(key, v);
    }
    Ok(Arc::new(
        b.with_retry(retry())
            .build()
            .map_err(|e| bad_config(repo, e))?,
    ))
}

/// `store` seen from the vault's `prefix` inside it (itself when there is none).
fn under_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    }
}

/// The runtime the HTTP backends run on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))
}

/// Defaults that options may override: a create-only upload is not retried after a timeout
/// (it is not idempotent), so a whole pack must fit in one request's time even on a slow uplink.
fn client_options() -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_timeout(std::time::Duration::from_secs(600))
        .with_connect_timeout(std::time::Duration::from_secs(30))
}

/// Transient errors and timeouts are retried with exponential backoff.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 8,
        retry_timeout: std::time::Duration::from_secs(300),
        backoff: object_store::BackoffConfig::default(),
    }
}
