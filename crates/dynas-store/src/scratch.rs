//! A throwaway PostgreSQL server for tests and benchmarks: a cluster made with `initdb` in a
//! temporary folder, started with `pg_ctl` on a free loopback port, stopped and deleted on
//! drop. Or, when `DYNAS_TEST_POSTGRES_URL` is set, that server instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable naming an existing server to use instead of a scratch one
/// (`postgres://user:password@host:port/database`; the user must be allowed to create
/// databases).
pub const URL_VAR: &str = "DYNAS_TEST_POSTGRES_URL";

/// The password of the scratch cluster's `postgres` superuser (loopback TCP only).
pub const PASSWORD: &str = "dynas-scratch";

/// A running PostgreSQL server (see the module's documentation).
#[derive(Debug)]
pub struct ScratchPostgres {
    /// The cluster when this process made it (`None` for a server given by
    /// [`URL_VAR`]).
    cluster: Option<Cluster>,
    /// `postgres://…/postgres` on the server.
    url: String,
    databases: AtomicUsize,
}

#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    // The newest version: directories are named by major version.
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            return Err(format!(
                "pg_ctl {args:?}: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl ScratchPostgres {
    /// The server of [`URL_VAR`] if set, else a new scratch cluster; `Err` says why neither
    /// is available (no PostgreSQL installed, `initdb` failed, ...).
    pub fn start() -> Result<Self, String> {
        if let Ok(url) = std::env::var(URL_VAR) {
            return Ok(Self {
                cluster: None,
                url,
                databases: AtomicUsize::new(0),
            });
        }
        let bin = find_bin().ok_or("no /usr/lib/postgresql/*/bin/initdb and pg_ctl")?;
        let as_postgres = is_root();
        let dir =
            std::env::temp_dir().join(format!("dynas-pg-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cluster = Cluster {
            dir: dir.clone(),
            bin,
            port: free_port()?,
            as_postgres,
        };
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?
                .success();
            if !ok {
                return Err(format!("cannot chown {} to postgres", dir.display()));
            }
        }
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "--no-instructions",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let url = format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            cluster.port
        );
        let server = Self {
            cluster: Some(cluster),
            url,
            databases: AtomicUsize::new(0),
        };
        server.start_again()?;
        Ok(server)
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with another user name and password (to test refused credentials).
    pub fn url_with_password(&self, password: &str) -> String {
        match self.url.split_once('@') {
            Some((_, rest)) => format!("postgres://postgres:{password}@{rest}"),
            None => self.url.clone(),
        }
    }

    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self, prefix: &str) -> Result<String, String> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls)
            .map_err(|e| format!("connect {}: {e}", crate::redact(&self.url)))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("create database {name}: {e}"))?;
        let base = self
            .url
            .rsplit_once('/')
            .map_or(self.url.as_str(), |(b, _)| b);
        Ok(format!("{base}/{name}"))
    }

    /// Stops the server (fast shutdown: sessions are cut), if this process started it.
    pub fn stop(&self) -> Result<(), String> {
        match &self.cluster {
            Some(c) => c.pg_ctl(&["-m", "fast", "stop"]),
            None => Err(format!(
                "{URL_VAR} names a server this process did not start"
            )),
        }
    }

    /// Starts the server again after [`ScratchPostgres::stop`].
    pub fn start_again(&self) -> Result<(), String> {
        match &self.cluster {
            Some(c) => c.pg_ctl(&["start"]),
            None => Ok(()),
        }
    }

    /// The cluster's folder (`None` for a server given by [`URL_VAR`]).
    pub fn dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.as_path())
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let _ = c.pg_ctl(&["-m", "immediate", "stop"]);
            let _ = std::fs::remove_dir_all(&c.dir);
        }
    }
}
