//! Argument parsing and dispatch for the `execguard` CLI. Exit statuses are defined
//! here, once, and documented in docs/cli.md.

mod demo;
mod demo_child;
mod events;
mod findings;
mod inherited;
mod report;
mod run;
mod since;
mod style;
mod symbolize;
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
    /// Summarise JSON Lines logs: warnings grouped and sorted, and the process tree
    Report(ReportArgs),
    /// Show the incidents execguard exists for, without the shim, in log mode and in fix mode
    Demo(DemoArgs),
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
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Format {
    Text,
    Dot,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// JSON Lines logs written by the shim (`-` reads standard input)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print a machine-readable summary (one JSON object) instead of text
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Only events since TIME: unix seconds, or a duration back from now (90s, 10m, 2h, 1d, 1h30m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// text, or dot (Graphviz: `execguard report --format dot LOG | dot -Tsvg > tree.svg`)
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Do not resolve module+offset origins to functions and lines
    #[arg(long)]
    pub no_symbols: bool,
    /// Most processes drawn in the text tree (0 = no limit)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_tree: usize,
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
        Cmd::DemoChild { role, args } => demo_child::main(&role, &args),
    }
}

/// One line on stderr, `execguard: ` first, in the style of every error of this tool.
pub fn fail(msg: impl std::fmt::Display) -> i32 {
    style::error_line(&msg.to_string());
    EXIT_TOOL_ERROR
}
