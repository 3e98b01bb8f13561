//! Argument parsing and dispatch for the `execguard` CLI. Exit statuses are defined
//! here, once, and documented in docs/cli.md.

mod caller_fds;
mod caller_sigs;
mod ci;
mod demo;
mod demo_child;
mod degraded;
mod events;
mod findings;
mod github;
mod inherited;
mod inputs;
mod prometheus;
mod junit;
mod outcomes;
mod report;
mod rules;
mod sarif;
mod run;
mod since;
mod style;
mod symbolize;
mod systemd;
mod tree;

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// `execguard` itself failed (library missing, log not writable, unreadable input).
pub const EXIT_TOOL_ERROR: i32 = 125;
/// CMD was found but could not be executed (shell convention).
pub const EXIT_CANNOT_EXEC: i32 = 126;
/// CMD was not found (shell convention).
pub const EXIT_NOT_FOUND: i32 = 127;
/// `--fail-on warn`, CMD succeeded, and the shim logged warnings.
pub const EXIT_WARNINGS: i32 = 66;

#[derive(Parser)]
#[command(
    name = "execguard",
    version,
    about = "Run programs under the execguard shim and read what it found",
    long_about = "Run programs under the execguard LD_PRELOAD shim, which logs (and in fix \
                  mode repairs) what a process hands to the programs it starts: leaked fds, \
                  blocked signal masks, ignored signals, select() overflow.\n\n\
                  Start with `execguard demo`."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run CMD with the shim preloaded, then print a summary of what it found
    Run(RunArgs),
    /// Summarise logs (JSON Lines, journal exports, syslog files, --journal): warnings grouped, the process tree per host
    Report(ReportArgs),
    /// Show the incidents execguard exists for, without the shim, in log mode and in fix mode
    Demo(DemoArgs),
    /// Print (or --install) the systemd drop-in that preloads the shim into UNIT
    Systemd(SystemdArgs),
    /// The incident programs the demo runs (internal)
    #[command(name = "__demo", hide = true)]
    DemoChild {
        role: String,
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Mode {
    /// Report only; the program behaves exactly as without the shim
    Log,
    /// Repair what is reported (close leaked fds, reset masks) and log each fix
    Fix,
    /// Load the shim but do nothing
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Log => "log",
            Mode::Fix => "fix",
            Mode::Off => "off",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum FailOn {
    /// Exit with status 66 when any warning was logged and CMD succeeded
    Warn,
    /// Always exit with CMD's status
    Never,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// What the shim does about what it finds
    #[arg(long, value_enum, default_value = "log")]
    pub mode: Mode,
    /// JSON Lines log to append to [default: a new $TMPDIR/execguard-PID.jsonl]
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// When the run's own exit status reports warnings
    #[arg(long, value_enum, default_value = "never", value_name = "WHEN")]
    pub fail_on: FailOn,
    /// Comma list of fds the shim must never touch (EXECGUARD_KEEP_FDS)
    #[arg(long, value_name = "FDS")]
    pub keep_fds: Option<String>,
    /// Record where each fd and blocked mask was created (EXECGUARD_ORIGINS=1); costs a little
    #[arg(long)]
    pub origins: bool,
    /// Print no summary line
    #[arg(long, short)]
    pub quiet: bool,
    /// The shim to preload [default: $EXECGUARD_LIB, else next to this program, else the installed one]
    #[arg(long, value_name = "PATH")]
    pub lib: Option<PathBuf>,
    /// Also write a CI report at the end: sarif, junit or github, to FILE (no FILE or
    /// `-`: standard output); repeatable
    #[arg(long, value_name = "FORMAT[=FILE]", value_parser = ci::parse_spec)]
    pub report: Vec<ci::ReportSpec>,
    /// Source paths in reports are made relative to DIR [default: the git checkout
    /// around the current directory, else the current directory]
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<PathBuf>,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Format {
    Text,
    Dot,
    /// Counters for node_exporter's textfile collector
    Prometheus,
    /// SARIF 2.1.0 (GitHub code scanning, GitLab, Jenkins warnings-ng)
    Sarif,
    /// JUnit XML: a failing test case per finding
    Junit,
    /// GitHub Actions workflow commands (::warning file=…,line=…::)
    Github,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// JSON Lines logs written by the shim, `journalctl -o json` exports, syslog files
    /// (`-` reads standard input)
    #[arg(required_unless_present = "journal", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also read the local journal: `journalctl -o json --identifier execguard`, plus
    /// the arguments after `--` (e.g. `-- --since -1h -u nginx.service`)
    #[arg(long)]
    pub journal: bool,
    /// journalctl arguments (after `--`, with --journal)
    #[arg(last = true, requires = "journal", value_name = "JOURNALCTL_ARG")]
    pub journal_args: Vec<String>,
    /// Print a machine-readable summary (one JSON object) instead of text
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Only events since TIME: unix seconds, or a duration back from now (90s, 10m, 2h, 1d, 1h30m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// text, dot (Graphviz: `execguard report --format dot LOG | dot -Tsvg > tree.svg`),
    /// prometheus (counters in the text format, for node_exporter's textfile collector),
    /// or a CI format: sarif, junit, github (see docs/ci.md)
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Do not resolve module+offset origins to functions and lines
    #[arg(long)]
    pub no_symbols: bool,
    /// Most processes drawn in the text tree (0 = no limit)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_tree: usize,
    /// Source paths in CI formats are made relative to DIR [default: the git checkout
    /// around the current directory, else the current directory]
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SystemdArgs {
    /// The service (`nginx` means `nginx.service`)
    pub unit: String,
    /// What the shim does in the service
    #[arg(long, value_enum, default_value = "log")]
    pub mode: Mode,
    /// Where events go: journal, syslog, or a JSON Lines file
    #[arg(long, default_value = "journal", value_name = "SINK")]
    pub log: String,
    /// The shim to preload [default: as `execguard run` finds it]
    #[arg(long, value_name = "PATH")]
    pub lib: Option<PathBuf>,
    /// Write the drop-in (UNIT.d/execguard.conf under --dir) instead of printing it
    #[arg(long)]
    pub install: bool,
    /// Unit directory for --install
    #[arg(long, default_value = "/etc/systemd/system", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Keep the demo's logs in this directory [default: a new directory in $TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return code;
        }
    };
    match cli.cmd {
        Cmd::Run(a) => run::run(a),
        Cmd::Report(a) => report::report(a),
        Cmd::Demo(a) => demo::demo(a),
        Cmd::Systemd(a) => systemd::systemd(a),
        Cmd::DemoChild { role, args } => demo_child::main(&role, &args),
    }
}

/// One line on stderr, `execguard: ` first, in the style of every error of this tool.
pub fn fail(msg: impl std::fmt::Display) -> i32 {
    style::error_line(&msg.to_string());
    EXIT_TOOL_ERROR
}
