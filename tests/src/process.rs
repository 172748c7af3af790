//! Real `bzzz` processes for process-level tests and `bzzz-bench`.
//!
//! - [`Ports`]: distinct free loopback ports for one node (listeners held until all are bound);
//! - [`Launch`] describes a `bzzz` command line, [`Daemon`] is the running process: killed
//!   (SIGKILL) when dropped, signalled with [`Daemon::signal`] (through `nix`, no `kill` binary),
//!   stopped with [`Daemon::stop`], awaited with [`Daemon::wait_ready`];
//! - [`election_view`] and [`agreed_admin`] read the election through [`bzzz_client::ApiClient`];
//! - [`Cli`] runs the client verbs of the binary (`bzzz status --json ...`) and returns a [`Run`].

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bzzz_client::ApiClient;
use bzzz_client::types::ElectionStatus;
pub use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::de::DeserializeOwned;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `N` distinct free loopback ports: every listener is held until all are bound, so (unlike `N`
/// calls of [`free_port`]) the kernel cannot hand the same port out twice.
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0u16; N];
    for (port, l) in ports.iter_mut().zip(&listeners) {
        *port = l.local_addr()?.port();
    }
    Ok(ports)
}

/// The three loopback ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// The P2P (libp2p TCP) port.
    pub p2p: u16,
    /// The API port.
    pub api: u16,
    /// The health port.
    pub health: u16,
}

impl Ports {
    /// Three distinct free ports (see [`free_ports`]).
    pub fn free() -> Result<Ports> {
        let [p2p, api, health] = free_ports()?;
        Ok(Ports { p2p, api, health })
    }

    /// `http://127.0.0.1:<api>`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }

    /// `http://127.0.0.1:<health>`.
    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.health)
    }

    /// `/ip4/127.0.0.1/tcp/<p2p>`, the multiaddr other nodes bootstrap through.
    pub fn p2p_multiaddr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p)
    }
}

/// Writes the mesh key every node this test process launches shares into `data_dir/mesh.key`
/// (created if needed) and returns its path: processes of one test find each other, and no key
/// outlives the test's temporary dirs.
pub fn shared_mesh_key(data_dir: &Path) -> PathBuf {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = KEY.get_or_init(bzzz_node::admission::files::mesh_key_text);
    let path = data_dir.join("mesh.key");
    if !path.exists() {
        let written = std::fs::create_dir_all(data_dir).and_then(|()| std::fs::write(&path, text));
        if let Err(e) = written {
            panic!("cannot write the test mesh key {}: {e}", path.display());
        }
    }
    path
}

/// The `bzzz` binary, for process-level tests. `BZZZ_BIN` names one; otherwise cargo builds it (a
/// no-op when it is up to date) into the calling test's target dir and profile: the binary
/// belongs to `bzzz-node`, so `CARGO_BIN_EXE_bzzz` does not exist for this package's tests.
/// Blocking: call it from `spawn_blocking` in async tests.
pub fn bzzz_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BZZZ_BIN") {
        return Ok(PathBuf::from(p));
    }
    // A test runs as <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable is not in <target>/<profile>/deps")?;
    let target_dir = profile_dir.parent().context("profile dir has no parent")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("profile dir name")?;
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(String::from))
        .unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("tests crate has no parent dir")?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--quiet", "-p", "bzzz-node", "--bin", "bzzz", "--target-dir"])
        .arg(target_dir);
    if profile != "debug" {
        cmd.args(["--profile", profile]);
    }
    let status = cmd.status().context("running cargo build for the bzzz binary")?;
    ensure!(status.success(), "cargo build -p bzzz-node --bin bzzz failed: {status}");
    let bin = profile_dir.join(format!("bzzz{}", std::env::consts::EXE_SUFFIX));
    ensure!(bin.exists(), "{} not found after cargo build", bin.display());
    Ok(bin)
}

/// [`bzzz_binary`] from async code.
pub async fn bzzz_binary_async() -> Result<PathBuf> {
    tokio::task::spawn_blocking(bzzz_binary).await?
}

/// Where a launched process's stderr goes.
#[derive(Debug, Clone)]
enum Stderr {
    Null,
    /// Created (truncated), readable with [`Daemon::log`].
    File(PathBuf),
    /// Appended to.
    Append(PathBuf),
}

/// A `bzzz` command line to start as a [`Daemon`]. stdin and stdout are null and stderr is
/// dropped unless told otherwise.
#[derive(Debug)]
pub struct Launch {
    cmd: Command,
    what: String,
    ports: Option<Ports>,
    stderr: Stderr,
    stdout_piped: bool,
}

impl Launch {
    /// `bzzz <args>` (e.g. `dev --nodes 3`).
    pub fn new<I, S>(bin: &Path, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        Launch {
            what: format!("{cmd:?}"),
            cmd,
            ports: None,
            stderr: Stderr::Null,
            stdout_piped: false,
        }
    }

    /// `bzzz run --mode <mode> --data-dir <data_dir>` listening on `ports` (loopback), with
    /// `RUST_LOG=warn` unless [`Launch::env`] says otherwise.
    pub fn node(bin: &Path, data_dir: &Path, ports: Ports, mode: &str) -> Launch {
        let mut l = Launch::new(bin, ["run", "--mode", mode, "--data-dir"]);
        l.cmd
            .arg(data_dir)
            .arg("--swarm-key-file")
            .arg(shared_mesh_key(data_dir))
            .arg("--p2p-listen")
            .arg(ports.p2p_multiaddr())
            .arg("--api-listen")
            .arg(format!("127.0.0.1:{}", ports.api))
            .arg("--health-listen")
            .arg(format!("127.0.0.1:{}", ports.health))
            .env("RUST_LOG", "warn");
        l.ports = Some(ports);
        l
    }

    /// `bzzz run --config <config>` with an environment free of `BZZZ_*` and `RUST_LOG`, so only
    /// the file configures it.
    pub fn config_file(bin: &Path, config: &Path) -> Launch {
        let mut l = Launch::new(bin, ["run", "--config"]);
        l.cmd.arg(config);
        l.clean_env()
    }

    /// Removes every `BZZZ_*` variable and `RUST_LOG` from the process's environment.
    pub fn clean_env(mut self) -> Launch {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BZZZ_") || k == "RUST_LOG" {
                self.cmd.env_remove(k);
            }
        }
        self
    }

    /// `--bootstrap <addr>`.
    pub fn bootstrap(mut self, addr: impl AsRef<OsStr>) -> Launch {
        self.cmd.arg("--bootstrap").arg(addr);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Launch {
        self.cmd.env(key, value);
        self
    }

    /// Records which ports the process listens on (for [`Launch::new`] command lines).
    pub fn ports(mut self, ports: Ports) -> Launch {
        self.ports = Some(ports);
        self
    }

    /// Writes stderr to `path` (created or truncated); [`Daemon::log`] reads it.
    pub fn log_to(mut self, path: PathBuf) -> Launch {
        self.stderr = Stderr::File(path);
        self
    }

    /// Appends stderr to `path`.
    pub fn log_append(mut self, path: PathBuf) -> Launch {
        self.stderr = Stderr::Append(path);
        self
    }

    /// Pipes stdout; take it with [`Daemon::take_stdout`].
    pub fn stdout_piped(mut self) -> Launch {
        self.stdout_piped = true;
        self
    }

    /// Starts the process.
    pub fn spawn(mut self) -> Result<Daemon> {
        let (stderr, log) = match &self.stderr {
            Stderr::Null => (Stdio::null(), None),
            Stderr::File(p) => {
                let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
                (Stdio::from(f), Some(p.clone()))
            }
            Stderr::Append(p) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening {}", p.display()))?;
                (Stdio::from(f), Some(p.clone()))
            }
        };
        self.cmd
            .stdin(Stdio::null())
            .stderr(stderr)
            .stdout(if self.stdout_piped {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let child = self.cmd.spawn().with_context(|| format!("spawning {}", self.what))?;
        Ok(Daemon {
            child,
            ports: self.ports,
            log,
        })
    }
}

/// A running `bzzz` process. Dropping it kills it (SIGKILL) and reaps it, so a failed test
/// leaves no process behind.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    ports: Option<Ports>,
    log: Option<PathBuf>,
}

impl Daemon {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The ports it was told to listen on, if it was launched with them.
    pub fn ports(&self) -> Option<Ports> {
        self.ports
    }

    fn known_ports(&self) -> Result<Ports> {
        self.ports.context("the process was launched without known ports")
    }

    /// A client of its API listener.
    pub fn api(&self) -> Result<ApiClient> {
        Ok(ApiClient::new(&self.known_ports()?.api_url())?)
    }

    /// A client of its health listener (health, readiness, metrics).
    pub fn health(&self) -> Result<ApiClient> {
        Ok(ApiClient::new(&self.known_ports()?.health_url())?)
    }

    /// What it wrote to stderr so far, if stderr went to a file.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Its stdout, if launched with [`Launch::stdout_piped`] (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal).with_context(|| format!("sending {signal} to {pid}"))
    }

    /// SIGKILL (`kill -9`), and reaps the process.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("SIGKILL")?;
        self.child.wait().context("reaping the killed process")?;
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; its exit code (`None` if a signal ended
    /// it).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if started.elapsed() > timeout {
                bail!("the process did not exit within {timeout:?}; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` and waits up to `timeout` for the exit code.
    pub async fn signal_and_wait(&mut self, signal: Signal, timeout: Duration) -> Result<Option<i32>> {
        self.signal(signal)?;
        self.wait_exit(timeout).await.with_context(|| format!("after {signal}"))
    }

    /// SIGTERM, then waits up to 15 s for the exit code.
    pub async fn stop(mut self) -> Result<Option<i32>> {
        self.signal_and_wait(Signal::SIGTERM, Duration::from_secs(15)).await
    }

    /// Polls `/health/ready` on its health port every 2 ms until it answers 200 (`timeout`).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let ports = self.known_ports()?;
        let health = ApiClient::with_timeout(&ports.health_url(), Duration::from_millis(500))?;
        let started = Instant::now();
        loop {
            if health.ready().await.is_ok_and(|r| r.ready) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!(
                    "process with health port {} not ready within {timeout:?}; log:\n{}",
                    ports.health,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the node behind `api` says about the election; `None` if it does not answer.
pub async fn election_view(api: &ApiClient) -> Option<ElectionStatus> {
    api.election_status().await.ok()
}

/// The admin every node behind `apis` names, with the term the first one reports, if all of them
/// answer and agree.
pub async fn agreed_admin(apis: &[ApiClient]) -> Option<(String, u64)> {
    let mut seen: Option<(String, u64)> = None;
    for api in apis {
        let view = election_view(api).await?;
        let admin = view.admin?;
        match &seen {
            None => seen = Some((admin, view.term)),
            Some((a, _)) if *a == admin => {}
            _ => return None,
        }
    }
    seen
}

/// What one run of a client verb did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Run {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout parsed as `T` (the `--json` output of a verb is the API's answer type).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.stdout)
            .with_context(|| format!("stdout is not the expected JSON: {}", self.text()))
    }

    /// Fails unless the run exited 0.
    pub fn ok(self, what: &str) -> Result<Run> {
        ensure!(
            self.success(),
            "{what}: exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.text(),
            self.stderr
        );
        Ok(self)
    }

    /// Fails unless the run exited 1 with `code` on stderr (after `error: `) and nothing on
    /// stdout.
    pub fn fails_with(self, what: &str, code: &str) -> Result<()> {
        ensure!(
            self.code == Some(1) && self.stderr.contains(code) && self.stderr.starts_with("error: "),
            "{what}: expected exit 1 with {code} on stderr, got exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.text(),
            self.stderr
        );
        ensure!(self.stdout.is_empty(), "{what}: stdout must be empty: {}", self.text());
        Ok(())
    }
}

/// The client verbs of the `bzzz` binary. With an API URL every run gets
/// `--api <url> --timeout-secs 20`; every run has no `BZZZ_*` variable in its environment
/// except those given to [`Cli::run_with`].
#[derive(Debug, Clone)]
pub struct Cli {
    bin: PathBuf,
    api: Option<String>,
}

impl Cli {
    /// Runs verbs as given (no `--api` added).
    pub fn new(bin: &Path) -> Cli {
        Cli {
            bin: bin.to_path_buf(),
            api: None,
        }
    }

    /// Runs verbs against the node at `api`.
    pub fn against(bin: &Path, api: &str) -> Cli {
        Cli {
            bin: bin.to_path_buf(),
            api: Some(api.to_owned()),
        }
    }

    /// Runs `bzzz <args>` with empty stdin.
    pub async fn run(&self, args: &[&str]) -> Result<Run> {
        self.run_with(args, b"", &[]).await
    }

    /// Runs `bzzz <args>` with `stdin` as its input and `env` set.
    pub async fn run_with(&self, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Result<Run> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args);
        if let Some(api) = &self.api {
            cmd.args(["--api", api, "--timeout-secs", "20"]);
        }
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BZZZ_") {
                cmd.env_remove(k);
            }
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let stdin = stdin.to_vec();
        let what = args.join(" ");
        let out = tokio::task::spawn_blocking(move || -> Result<std::process::Output> {
            let mut child = cmd.spawn()?;
            let mut input = child.stdin.take().context("child stdin")?;
            // Feed stdin from a thread so a child that writes before it reads cannot block us.
            let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &stdin));
            let out = child.wait_with_output()?;
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("stdin writer panicked"))?
                .or_else(|e| {
                    // The child may exit without reading stdin (every verb but `context put`).
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            Ok(out)
        })
        .await?
        .with_context(|| format!("running bzzz {what}"))?;
        Ok(Run {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
