//! The rules behind the CI reports: one per warning event kind, with what it means
//! and what to change in the code. The rule id is the event's name (docs/events.md),
//! so a SARIF result, a JUnit failure and a log line name the problem alike. CLI only.

pub struct Rule {
    /// The event name.
    pub id: &'static str,
    /// PascalCase name (SARIF `rule.name`).
    pub name: &'static str,
    /// One line: what was seen.
    pub short: &'static str,
    /// What to change, in plain text.
    pub help: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule {
        id: "exec_fd_leak",
        name: "FdLeakedToChild",
        short: "a program was started holding file descriptors it was never meant to have",
        help: "Create the fd close-on-exec: SOCK_CLOEXEC for socket()/accept4(), O_CLOEXEC for \
               open(), pipe2(O_CLOEXEC), F_DUPFD_CLOEXEC, or fcntl(fd, F_SETFD, FD_CLOEXEC) right \
               after creating it. In Python keep subprocess's close_fds=True (the default) and \
               hand fds on with pass_fds. A listening socket held by a child keeps the port \
               taken after the server exits.",
    },
    Rule {
        id: "startup_fds",
        name: "FdInheritedAtStart",
        short: "a program started holding file descriptors its parent leaked",
        help: "Fix the parent named in the event: it must create its fds close-on-exec \
               (SOCK_CLOEXEC, O_CLOEXEC) or close them before exec; Python: close_fds=True. \
               fds handed over on purpose go in LISTEN_FDS or EXECGUARD_KEEP_FDS.",
    },
    Rule {
        id: "exec_sigmask",
        name: "BlockedMaskAtExec",
        short: "a program was started with signals blocked",
        help: "The signal mask survives fork and exec: a thread that blocked SIGALRM, SIGCHLD \
               or SIGTERM hands that to every program it starts. Reset the mask in the child \
               before exec (pthread_sigmask(SIG_SETMASK, &empty, NULL) after fork), use \
               posix_spawnattr_setsigmask with POSIX_SPAWN_SETSIGMASK, or start children from a \
               thread that blocks nothing. Python: signal.pthread_sigmask in preexec_fn, or \
               start the subprocess from the main thread.",
    },
    Rule {
        id: "startup_sigmask",
        name: "BlockedMaskAtStart",
        short: "a program started with signals blocked by its parent",
        help: "Fix the parent: reset the mask between fork and exec (pthread_sigmask with an \
               empty set) or with posix_spawnattr_setsigmask.",
    },
    Rule {
        id: "exec_sigign",
        name: "IgnoredSignalAtExec",
        short: "a program was started with signals ignored",
        help: "SIG_IGN survives exec. Restore SIGPIPE (and others) to SIG_DFL in the child \
               before exec, or with posix_spawnattr_setsigdefault and POSIX_SPAWN_SETSIGDEF. \
               Python: subprocess's restore_signals=True (the default).",
    },
    Rule {
        id: "startup_sigign",
        name: "IgnoredSignalAtStart",
        short: "a program started with signals ignored by its parent",
        help: "Fix the parent: restore the dispositions to SIG_DFL before exec \
               (signal(SIGPIPE, SIG_DFL) in the child, POSIX_SPAWN_SETSIGDEF).",
    },
    Rule {
        id: "select_fd_overflow",
        name: "SelectPastFdSetSize",
        short: "select() was called with fds at or above FD_SETSIZE (1024)",
        help: "An fd_set holds 1024 bits: select() on a higher fd writes past it. Use poll() \
               or epoll instead of select, and stop the parent leaking its fd pool into this \
               program (CLOEXEC), which pushes its fds that high.",
    },
    Rule {
        id: "system_blocking",
        name: "SystemBlocksServer",
        short: "system()/popen() blocked a process that serves sockets",
        help: "system() and pclose() wait for the child while the process's listeners go \
               unanswered. Run the command asynchronously (posix_spawn plus a SIGCHLD or \
               pidfd watcher, or the event loop's process API) and create listeners with \
               SOCK_CLOEXEC so the command does not inherit them.",
    },
    Rule {
        id: "connect_storm",
        name: "ConnectStorm",
        short: "many connections to one peer ended without an answer",
        help: "A client reconnects in a loop to a peer that closes or refuses: reset the \
               cached-connection state on error, and back off between attempts.",
    },
];

/// The rule of an event kind; kinds this CLI does not know get a generic rule.
pub fn rule(event: &str) -> &'static Rule {
    const OTHER: Rule = Rule {
        id: "execguard",
        name: "ExecguardWarning",
        short: "execguard reported a warning",
        help: "See docs/events.md for this event.",
    };
    RULES.iter().find(|r| r.id == event).unwrap_or(&OTHER)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// Every warning kind the shim writes has a rule of its own.
    #[test]
    fn every_warning_kind_has_a_rule() {
        for kind in super::super::events::WARNING_KINDS {
            assert_eq!(rule(kind).id, *kind);
        }
    }
}
