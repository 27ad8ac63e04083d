//! The system secret: kept outside the store, it seals (AES-256-GCM) what the store must not
//! hold in the clear — the signing keys, the credential-hashing key and client secrets — so
//! that a copy of the database alone yields no usable key or secret.
//!
//! Several secrets may be given, newest first: the first seals, every one opens, and
//! `idforce secrets reseal` moves everything under the first. Each sealed value names the
//! secret that sealed it by a 4-byte fingerprint, so a store opened with the wrong secret
//! says which one it needs.
//!
//! Where the secret comes from, first found: `--secret-file`, `IDFORCE_SECRET` (comma-
//! separated), `IDFORCE_SECRET_FILE` (one per line), `[server] secret_file`, then the old
//! `IDFORCE_KEY_ENCRYPTION_KEY(_FILE)` (an alias for one release). With none, a SQLite store
//! gets one generated into a 0600 file beside it; PostgreSQL refuses to start, because every
//! node must use the same secret.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::grant::sha256;
use idforce_core::ports::SecretBox;
use idforce_core::token::random_bytes;

/// The first byte of every sealed value: the format (version, fingerprint, nonce, sealed).
const FORMAT: u8 = 1;
const FINGERPRINT: usize = 4;
const NONCE: usize = 12;

/// One secret's sealing key.
struct SealKey {
    fingerprint: [u8; FINGERPRINT],
    aead: aead::LessSafeKey,
    /// The key-encryption key of releases before the system secret, for values sealed by
    /// `IDFORCE_KEY_ENCRYPTION_KEY` (signing keys only), which migrate on start.
    legacy: aead::LessSafeKey,
}

impl SealKey {
    fn new(secret: &str) -> SealKey {
        let key = |label: &str| {
            let digest = sha256(format!("{label}\0{secret}").as_bytes());
            #[allow(clippy::expect_used)]
            let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &digest).expect("32 bytes");
            aead::LessSafeKey::new(unbound)
        };
        let id = sha256(format!("idforce system secret fingerprint\0{secret}").as_bytes());
        let mut fingerprint = [0u8; FINGERPRINT];
        fingerprint.copy_from_slice(&id[..FINGERPRINT]);
        SealKey {
            fingerprint,
            aead: key("idforce system secret seal"),
            legacy: key("idforce key encryption"),
        }
    }
}

/// The secrets in force, newest first (shared: aws-lc-rs keys are not `Clone`).
#[derive(Clone)]
pub struct SystemSecret(Arc<Vec<SealKey>>);

/// Where the secret came from, for the start-up line and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(PathBuf),
    Env,
    EnvFile(PathBuf),
    Config(PathBuf),
    /// `IDFORCE_KEY_ENCRYPTION_KEY(_FILE)`, the deprecated alias.
    LegacyEnv,
    /// Read from (or generated into) the file beside a SQLite store.
    Beside {
        path: PathBuf,
        generated: bool,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(p) => write!(f, "--secret-file {}", p.display()),
            Origin::Env => f.write_str("IDFORCE_SECRET"),
            Origin::EnvFile(p) => write!(f, "IDFORCE_SECRET_FILE={}", p.display()),
            Origin::Config(p) => write!(f, "[server] secret_file = {}", p.display()),
            Origin::LegacyEnv => f.write_str("IDFORCE_KEY_ENCRYPTION_KEY (deprecated)"),
            Origin::Beside { path, generated } => {
                let how = if *generated {
                    "generated into"
                } else {
                    "read from"
                };
                write!(f, "{how} {}", path.display())
            }
        }
    }
}

/// How the secret may be given, as the command line, environment and config file say.
#[derive(Debug, Default, Clone)]
pub struct SecretSources {
    pub flag_file: Option<PathBuf>,
    /// `[server] secret_file`, already resolved against the config file's directory.
    pub config_file: Option<PathBuf>,
}

/// The shortest secret accepted from a user: sealed values name their secret by a fingerprint,
/// and a short one could be found from it by trying guesses.
pub const MIN_SECRET_CHARS: usize = 16;

/// Refuses a secret too short to resist guessing.
fn long_enough<S: AsRef<str>>(secrets: &[S], origin: &str) -> Result<(), String> {
    match secrets
        .iter()
        .map(|s| s.as_ref().trim())
        .find(|s| !s.is_empty() && s.chars().count() < MIN_SECRET_CHARS)
    {
        Some(_) => Err(format!(
            "{origin}: a secret shorter than {MIN_SECRET_CHARS} characters; use a long random one \
             (e.g. `openssl rand -base64 32`)"
        )),
        None => Ok(()),
    }
}

impl SystemSecret {
    /// From secrets given newest first. Empty ones are ignored; none at all is an error.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<SystemSecret, String> {
        let keys: Vec<SealKey> = secrets
            .iter()
            .map(|s| s.as_ref().trim())
            .filter(|s| !s.is_empty())
            .map(SealKey::new)
            .collect();
        if keys.is_empty() {
            return Err("the system secret is empty".into());
        }
        Ok(SystemSecret(Arc::new(keys)))
    }

    /// Finds the secret (see the module's comment). `database` decides what happens when
    /// none is given: a SQLite store gets one generated beside it.
    pub fn resolve(
        sources: &SecretSources,
        database: &str,
    ) -> Result<(SystemSecret, Origin), String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(path) = &sources.flag_file {
            return Ok((read_file(path)?, Origin::Flag(path.clone())));
        }
        if let Some(v) = env("IDFORCE_SECRET") {
            let secrets: Vec<&str> = v.split(',').collect();
            long_enough(&secrets, "IDFORCE_SECRET")?;
            return Ok((SystemSecret::new(&secrets)?, Origin::Env));
        }
        if let Some(path) = env("IDFORCE_SECRET_FILE").map(PathBuf::from) {
            return Ok((read_file(&path)?, Origin::EnvFile(path)));
        }
        if let Some(path) = &sources.config_file {
            return Ok((read_file(path)?, Origin::Config(path.clone())));
        }
        if let Some(v) = env("IDFORCE_KEY_ENCRYPTION_KEY") {
            return Ok((SystemSecret::new(&[v])?, Origin::LegacyEnv));
        }
        if let Some(path) = env("IDFORCE_KEY_ENCRYPTION_KEY_FILE") {
            let v = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            return Ok((SystemSecret::new(&[v])?, Origin::LegacyEnv));
        }
        let Some(db_file) = idforce_store::sqlite_file(database) else {
            if database.starts_with("postgres") {
                return Err(
                    "PostgreSQL needs the system secret, the same on every node: set \
                     IDFORCE_SECRET, IDFORCE_SECRET_FILE, --secret-file or [server] secret_file \
                     (e.g. the output of `openssl rand -base64 32`)"
                        .into(),
                );
            }
            return Err(format!(
                "no secret given, and {} is not a SQLite store to keep one beside",
                idforce_store::redact_url(database)
            ));
        };
        let path = beside(&db_file);
        if path.exists() {
            return Ok((
                read_file(&path)?,
                Origin::Beside {
                    path,
                    generated: false,
                },
            ));
        }
        let secret = generate_file(&path)?;
        Ok((
            secret,
            Origin::Beside {
                path,
                generated: true,
            },
        ))
    }

    /// The fingerprint of the secret that seals (hex), as sealed values name it.
    pub fn fingerprint(&self) -> String {
        hex(&self.0[0].fingerprint)
    }

    /// The fingerprints of every secret given, newest first.
    pub fn fingerprints(&self) -> Vec<String> {
        self.0.iter().map(|k| hex(&k.fingerprint)).collect()
    }

    /// The fingerprint a sealed value names, if it is one.
    pub fn sealed_with(sealed: &[u8]) -> Option<String> {
        (sealed.len() > 1 + FINGERPRINT && sealed[0] == FORMAT)
            .then(|| hex(&sealed[1..1 + FINGERPRINT]))
    }

    /// Whether `sealed` was sealed by the newest secret (else `reseal` should move it).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        Self::sealed_with(sealed).as_deref() == Some(self.fingerprint().as_str())
    }

    /// `plain` sealed for `purpose`, unless `kept` already is exactly that under the newest
    /// secret (`None` then: nothing to write at every start on an unchanged config).
    pub fn seal_unless_kept(
        &self,
        purpose: &str,
        kept: Option<&[u8]>,
        plain: &[u8],
    ) -> Option<Vec<u8>> {
        let unchanged = kept.is_some_and(|sealed| {
            self.is_current(sealed) && self.open(purpose, sealed).as_deref() == Some(plain)
        });
        (!unchanged).then(|| self.seal(purpose, plain))
    }

    /// Opens a value sealed by `IDFORCE_KEY_ENCRYPTION_KEY` before the system secret
    /// existed (nonce, then the sealed key, with `aad` the key's kid).
    pub fn open_legacy(&self, aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        self.0.iter().find_map(|k| {
            let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut buf = rest.to_vec();
            let plain = k
                .legacy
                .open_in_place(nonce, aead::Aad::from(aad.as_bytes()), &mut buf)
                .ok()?;
            Some(plain.to_vec())
        })
    }
}

impl SecretBox for SystemSecret {
    fn seal(&self, purpose: &str, plain: &[u8]) -> Vec<u8> {
        let key = &self.0[0];
        let nonce = random_bytes::<NONCE>();
        let mut buf = plain.to_vec();
        // Sealing fails only for inputs of gigabytes; an empty result never opens.
        if key
            .aead
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .is_err()
        {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(1 + FINGERPRINT + NONCE + buf.len());
        out.push(FORMAT);
        out.extend_from_slice(&key.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out
    }

    fn open(&self, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 1 + FINGERPRINT + NONCE || sealed[0] != FORMAT {
            return None;
        }
        let (fingerprint, rest) = sealed[1..].split_at(FINGERPRINT);
        let (nonce, body) = rest.split_at(NONCE);
        let key = self.0.iter().find(|k| k.fingerprint == fingerprint)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = body.to_vec();
        let plain = key
            .aead
            .open_in_place(nonce, aead::Aad::from(purpose.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Why `what` cannot be opened with the secrets given: which secret sealed it.
pub fn cannot_open(secrets: &SystemSecret, sealed: &[u8], what: &str) -> String {
    let given = secrets.fingerprints().join(", ");
    match SystemSecret::sealed_with(sealed) {
        Some(needed) => format!(
            "the system secret given (fingerprint {given}) cannot open {what}, which the secret \
             with fingerprint {needed} sealed: give that secret (after the new one, to rotate)"
        ),
        None => format!("{what} is not sealed in a form this idforce reads"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The secrets of a file: one per line, newest first; blank lines and `#` comments ignored.
fn read_file(path: &Path) -> Result<SystemSecret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the system secret from {}: {e}", path.display()))?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    long_enough(&lines, &path.display().to_string())?;
    SystemSecret::new(&lines).map_err(|e| format!("{}: {e}", path.display()))
}

/// The secret file of a SQLite store: `idforce.db` → `idforce.secret`, beside it.
pub fn beside(db_file: &Path) -> PathBuf {
    db_file.with_extension("secret")
}

/// Generates a secret (32 random bytes) into a new 0600 file: written whole to a temporary
/// file, made durable, then linked into place — which fails if another process made the file
/// first, whose secret is then the one used — and the directory made durable, so the secret
/// cannot vanish after a crash while the store it sealed survives.
fn generate_file(path: &Path) -> Result<SystemSecret, String> {
    use std::io::Write;
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}", hex(&random_bytes::<6>())));
    let cannot = |e: std::io::Error| {
        format!(
            "cannot create the system secret file {}: {e}",
            path.display()
        )
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let text = format!(
        "# idforce's system secret: it seals the signing keys and secrets of the store beside \
         it.\n# Keep it apart from backups of the store; without it the store cannot be \
         opened.\n{secret}\n"
    );
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(cannot(e));
    }
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            SystemSecret::new(&[secret])
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_file(path),
        Err(e) => Err(cannot(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_secret_and_purpose_only() {
        let s = SystemSecret::new(&["correct horse"]).expect("secret");
        let sealed = s.seal("client_secret:0Hx000000000001", b"ABC");
        assert_eq!(
            s.open("client_secret:0Hx000000000001", &sealed).as_deref(),
            Some(&b"ABC"[..])
        );
        assert_eq!(
            s.open("client_secret:0Hx000000000002", &sealed),
            None,
            "another purpose"
        );
        let other = SystemSecret::new(&["battery staple"]).expect("secret");
        assert_eq!(other.open("client_secret:0Hx000000000001", &sealed), None);
        assert_eq!(SystemSecret::sealed_with(&sealed), Some(s.fingerprint()));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(s.open("client_secret:0Hx000000000001", &tampered), None);
        assert_ne!(
            s.seal("p", b"ABC"),
            s.seal("p", b"ABC"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn the_first_secret_seals_and_every_one_opens() {
        let old = SystemSecret::new(&["old"]).expect("secret");
        let sealed_old = old.seal("p", b"x");
        let rotated = SystemSecret::new(&["new", "old"]).expect("secrets");
        assert_eq!(rotated.open("p", &sealed_old).as_deref(), Some(&b"x"[..]));
        assert!(!rotated.is_current(&sealed_old));
        let sealed_new = rotated.seal("p", b"x");
        assert!(rotated.is_current(&sealed_new));
        assert_eq!(
            old.open("p", &sealed_new),
            None,
            "the old secret cannot open the new"
        );
        assert_eq!(rotated.fingerprints().len(), 2);
        assert!(SystemSecret::new(&["", "  "]).is_err());
    }

    #[test]
    fn postgresql_without_a_secret_refuses_to_start() {
        let given = [
            "IDFORCE_SECRET",
            "IDFORCE_SECRET_FILE",
            "IDFORCE_KEY_ENCRYPTION_KEY",
        ]
        .iter()
        .any(|k| std::env::var_os(k).is_some());
        if given {
            eprintln!("SKIPPED: a system secret is set in this environment");
            return;
        }
        let Err(why) = SystemSecret::resolve(
            &SecretSources::default(),
            "postgres://postgres@127.0.0.1:5432/idforce",
        ) else {
            panic!("started without a secret");
        };
        assert!(why.contains("PostgreSQL needs the system secret"), "{why}");
        // The control: given one, it resolves.
        let dir = std::env::temp_dir().join(format!("idforce-pg-{}", hex(&random_bytes::<6>())));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("s");
        std::fs::write(
            &file,
            "# comment\nnewest-secret-0123456789\n\nolder-secret-0123456789\n",
        )
        .expect("write");
        let sources = SecretSources {
            flag_file: Some(file.clone()),
            config_file: None,
        };
        let (secret, origin) =
            SystemSecret::resolve(&sources, "postgres://postgres@127.0.0.1:5432/idforce")
                .expect("resolves");
        assert_eq!(origin, Origin::Flag(file.clone()));
        assert_eq!(
            secret.fingerprints().len(),
            2,
            "one per line, comments skipped"
        );
        assert_eq!(
            secret.fingerprint(),
            SystemSecret::new(&["newest-secret-0123456789"])
                .expect("secret")
                .fingerprint()
        );
        // Too short to resist guessing: refused, saying why.
        std::fs::write(&file, "short\n").expect("write");
        let Err(why) = SystemSecret::resolve(&sources, "postgres://x/y") else {
            panic!("a short secret accepted");
        };
        assert!(why.contains("shorter than 16 characters"), "{why}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_generated_file_is_private_and_read_back() {
        let dir =
            std::env::temp_dir().join(format!("idforce-secret-{}", hex(&random_bytes::<6>())));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = beside(&dir.join("idforce.db"));
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("idforce.secret")
        );
        let made = generate_file(&path).expect("generated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = read_file(&path).expect("read back");
        assert_eq!(read.fingerprint(), made.fingerprint());
        // A second generation (another process, same moment) uses the file already there.
        assert_eq!(
            generate_file(&path).expect("again").fingerprint(),
            made.fingerprint()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
