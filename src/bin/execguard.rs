//! The `execguard` command: run a program under the shim, read its logs, show the demo.
//! Ordinary std code (allocation, threads, env) is fine here: the CLI never links the
//! hooks — the library is a cdylib that this binary only puts into `LD_PRELOAD`.

#[path = "../cli/mod.rs"]
mod cli;

fn main() {
    std::process::exit(cli::main());
}
