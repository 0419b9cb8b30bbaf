//! A real PostgreSQL server for integration tests.
//!
//! `PgServer::start` runs `initdb` into a scratch directory, starts a `postgres` postmaster on a
//! free 127.0.0.1 port and creates a `sipl` database; dropping the server stops it. Tests talk
//! to the real thing rather than to a mock, so SQL and driver behaviour are what users get.
//!
//! PostgreSQL refuses to run as root. When the tests run as root, the server's commands run as
//! the `postgres` system user (or `nobody` where there is none), and the data directory is
//! owned by that user.

use std::ffi::{CString, OsString};
use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The superuser `initdb` creates (trust authentication, no password); the user in `url`.
pub const USER: &str = "sipl";

/// The database `start` creates for the test; the database in `url`.
pub const DATABASE: &str = "sipl";

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an immediate shutdown may take before the postmaster is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest socket directory: a Unix socket path (directory + `/.s.PGSQL.65535`) must fit
/// in the 108 bytes of `sun_path`, its terminating NUL included.
const SOCKET_DIR_MAX: usize = 90;

/// Start attempts: another process may take the free port between our check and the bind.
const PORT_ATTEMPTS: usize = 5;

/// A running PostgreSQL server with a `sipl` database, stopped when dropped.
pub struct PgServer {
    /// `postgresql://sipl@127.0.0.1:PORT/sipl`: connects as the superuser, no password.
    pub url: String,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    child: Child,
    log: PathBuf,
    bin: PgBin,
    /// A short directory under /tmp, used when the caller's directory cannot hold the socket or
    /// the data; removed after the server has stopped (fields drop after `Drop::drop`).
    _scratch: Option<tempfile::TempDir>,
}

impl PgServer {
    /// Starts a server with its data in `dir/pgdata` (or in a short directory under /tmp when
    /// `dir` is too long for the socket path or, as root, not reachable by the server's user)
    /// and its log in `dir/postgres.log`.
    ///
    /// Returns None, saying why on stderr, only when no PostgreSQL server binaries exist: on
    /// PATH, in /usr/lib/postgresql/*/bin or in the repository's .work/pg (where `make test`
    /// unpacks Debian's packages when it cannot install them). Any other failure panics with
    /// the server's log.
    pub fn start(dir: &Path) -> Option<PgServer> {
        let Some(bin) = PgBin::find() else {
            eprintln!(
                "no PostgreSQL server binaries (initdb) on PATH, in /usr/lib/postgresql/*/bin \
                 or in .work/pg: skipping (`make test` installs them)"
            );
            return None;
        };
        for tool in ["initdb", "postgres"] {
            assert!(
                bin.dir.join(tool).is_file(),
                "{} has initdb but no {tool}: a partial PostgreSQL installation",
                bin.dir.display()
            );
        }
        fs::create_dir_all(dir).expect("create the server's directory");
        let dir = dir.canonicalize().expect("canonicalize the server's directory");
        let run_as = RunAs::for_server();

        // The data directory, and a short one under /tmp where the caller's will not do.
        let mut scratch = None;
        let data_parent = if run_as.as_ref().is_none_or(|u| u.can_reach(&dir)) {
            dir.clone()
        } else {
            short_dir(&mut scratch, run_as.as_ref())
        };
        let data = data_parent.join("pgdata");
        fs::create_dir_all(&data).expect("create the data directory");
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).expect("chmod pgdata");
        let socket_dir = if data.as_os_str().len() <= SOCKET_DIR_MAX {
            data.clone()
        } else {
            short_dir(&mut scratch, run_as.as_ref())
        };
        if let Some(u) = &run_as {
            chown(&data, Some(u.uid), Some(u.gid)).expect("chown the data directory");
        }

        let initdb = bin
            .server_command("initdb", run_as.as_ref())
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
            .output()
            .expect("spawn initdb");
        assert!(initdb.status.success(), "initdb failed:\n{}", output_text(&initdb));

        let log = dir.join("postgres.log");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log_file = File::create(&log).expect("create the server log");
            let stderr = log_file.try_clone().expect("clone the log handle");
            let child = bin
                .server_command("postgres", run_as.as_ref())
                .arg("-D")
                .arg(&data)
                .arg("-p")
                .arg(port.to_string())
                .args(["-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", socket_dir.display()))
                // A throwaway cluster: durability only costs time.
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"])
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(stderr)
                .spawn()
                .expect("spawn postgres");
            // From here on the server is owned by a PgServer, so a panic stops it.
            let mut server = PgServer {
                url: format!("postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"),
                port,
                child,
                log: log.clone(),
                bin: bin.clone(),
                _scratch: None,
            };
            if server.wait_until_ready() {
                server.create_database();
                server._scratch = scratch;
                return Some(server);
            }
        }
        panic!("postgres could not bind a free port in {PORT_ATTEMPTS} attempts");
    }

    /// The server's log so far (stdout and stderr of the postmaster).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Waits until the server accepts connections. False when it exited because the port was
    /// taken (the caller retries on another); panics on any other exit or after
    /// `READY_TIMEOUT`.
    fn wait_until_ready(&mut self) -> bool {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll postgres") {
                let log = self.log();
                if log.contains("could not bind") || log.contains("could not create any TCP/IP") {
                    return false;
                }
                panic!("postgres exited ({status}) before accepting connections; its log:\n{log}");
            }
            if self.accepts_connections() {
                return true;
            }
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "postgres accepted no connections in {READY_TIMEOUT:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server takes connections now: `pg_isready` where there is one, else the
    /// postmaster's own "ready" line (messages are in English: the server runs with LC_ALL=C).
    fn accepts_connections(&self) -> bool {
        match self.bin.client_command("pg_isready") {
            Some(mut c) => c
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", USER, "-d", "postgres", "-t", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            None => self.log().contains("ready to accept connections"),
        }
    }

    /// Creates the `sipl` database with `createdb`, or `psql` where there is no `createdb`.
    fn create_database(&self) {
        let port = self.port.to_string();
        let out = if let Some(mut c) = self.bin.client_command("createdb") {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", USER, DATABASE]).output()
        } else if let Some(mut c) = self.bin.client_command("psql") {
            c.args(["-h", "127.0.0.1", "-p", &port, "-U", USER, "-d", "postgres"])
                .args(["-v", "ON_ERROR_STOP=1", "-c", &format!("CREATE DATABASE {DATABASE}")])
                .output()
        } else {
            panic!("neither createdb nor psql next to {} or on PATH", self.bin.dir.display());
        }
        .expect("spawn the database creation");
        assert!(
            out.status.success(),
            "creating database {DATABASE} failed:\n{}\nserver log:\n{}",
            output_text(&out),
            self.log()
        );
    }
}

impl Drop for PgServer {
    /// Stops the server: SIGQUIT is PostgreSQL's immediate shutdown (no checkpoint, the
    /// backends end at once); a postmaster still there after `STOP_TIMEOUT` is killed, and its
    /// backends then exit on their own when they see it gone.
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // SAFETY: kill(2) on our own child, which has not been reaped, so its pid is its own.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) };
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) {
            if start.elapsed() > STOP_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Where the PostgreSQL binaries are, and the library path they need when unpacked locally.
#[derive(Clone)]
struct PgBin {
    dir: PathBuf,
    /// LD_LIBRARY_PATH for binaries unpacked into .work/pg (their libraries are beside them).
    library_path: Option<OsString>,
}

impl PgBin {
    /// The directory of `initdb`: on PATH (symlinks followed, so that the tools beside it are
    /// found, as with Debian's /usr/lib/postgresql/N/bin), then the newest
    /// /usr/lib/postgresql/*/bin, then the newest one under the repository's .work/pg.
    fn find() -> Option<PgBin> {
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.join("initdb"))
            .find(|f| f.is_file())
            .and_then(|f| f.canonicalize().ok())
            .and_then(|f| f.parent().map(Path::to_path_buf));
        if let Some(dir) = on_path {
            return Some(PgBin { dir, library_path: None });
        }
        if let Some(dir) = newest_bin(Path::new("/usr/lib/postgresql")) {
            return Some(PgBin { dir, library_path: None });
        }
        let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".work/pg");
        let dir = newest_bin(&local.join("usr/lib/postgresql"))?;
        let mut libs: Vec<PathBuf> = ["usr/lib", "lib"]
            .iter()
            .flat_map(|l| fs::read_dir(local.join(l)).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.to_string_lossy().ends_with("-linux-gnu"))
            .collect();
        libs.extend(std::env::var_os("LD_LIBRARY_PATH").iter().flat_map(std::env::split_paths));
        let library_path = std::env::join_paths(libs).ok();
        Some(PgBin { dir, library_path })
    }

    /// A server-side command (`initdb`, `postgres`), run as `run_as` where given, in English,
    /// from `/` (the server's user may not be able to enter our working directory).
    fn server_command(&self, tool: &str, run_as: Option<&RunAs>) -> Command {
        let mut c = self.command(&self.dir.join(tool));
        c.current_dir("/").env("LC_ALL", "C").env_remove("PGDATA");
        if let Some(u) = run_as {
            // std drops the supplementary groups, then sets the gid and uid, before exec.
            c.uid(u.uid).gid(u.gid);
        }
        c
    }

    /// A client tool (`pg_isready`, `createdb`, `psql`) from the server's directory, else from
    /// PATH; None where there is none. Clients may run as root.
    fn client_command(&self, tool: &str) -> Option<Command> {
        let beside = self.dir.join(tool);
        if beside.is_file() {
            return Some(self.command(&beside));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|d| d.join(tool)).find(|f| f.is_file()).map(Command::new)
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        if let Some(lib) = &self.library_path {
            c.env("LD_LIBRARY_PATH", lib);
        }
        c
    }
}

/// The `bin` directory of the highest PostgreSQL major version under `root` (root/N/bin).
fn newest_bin(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// The system user the server runs as when we are root.
struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// None when we are not root (the server runs as us); else `postgres`, or `nobody`.
    fn for_server() -> Option<RunAs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let user = ["postgres", "nobody"].iter().find_map(|name| lookup_user(name));
        Some(user.expect("running as root, and neither a postgres nor a nobody user exists"))
    }

    /// Whether this user can reach files in `dir` once `dir` lets others through: we add the
    /// search bit to `dir` (the caller's scratch directory) and need it on every ancestor.
    fn can_reach(&self, dir: &Path) -> bool {
        let Ok(meta) = fs::metadata(dir) else { return false };
        let mode = meta.permissions().mode();
        if fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001)).is_err() {
            return false;
        }
        dir.ancestors()
            .skip(1)
            .all(|a| fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
    }
}

/// The uid and gid of `name` (getpwnam_r: tests run on several threads).
fn lookup_user(name: &str) -> Option<RunAs> {
    let name = CString::new(name).ok()?;
    // SAFETY: passwd is plain data (integers and pointers), valid zeroed.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives the use of pwd's strings (we
    // read only the integer fields).
    let rc = unsafe {
        libc::getpwnam_r(name.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found)
    };
    (rc == 0 && !found.is_null()).then_some(RunAs { uid: pwd.pw_uid, gid: pwd.pw_gid })
}

/// The short scratch directory under /tmp (made once, owned by the server's user).
fn short_dir(scratch: &mut Option<tempfile::TempDir>, run_as: Option<&RunAs>) -> PathBuf {
    let dir = scratch.get_or_insert_with(|| {
        let tmp = tempfile::Builder::new()
            .prefix("sipl-pg-")
            .tempdir_in("/tmp")
            .expect("create a scratch directory under /tmp");
        if let Some(u) = run_as {
            chown(tmp.path(), Some(u.uid), Some(u.gid)).expect("chown the scratch directory");
        }
        tmp
    });
    dir.path().to_path_buf()
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
