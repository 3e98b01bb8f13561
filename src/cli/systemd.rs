//! `execguard systemd UNIT`: the drop-in that preloads the shim into one service,
//! printed, or with `--install` written to `/etc/systemd/system/UNIT.d/execguard.conf`.
//! Rolling back is removing that file (and `systemctl daemon-reload`).

use super::run::find_lib_or;
use super::SystemdArgs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DROP_IN: &str = "execguard.conf";

/// `nginx` means `nginx.service`; other unit types keep their suffix.
pub fn unit_name(arg: &str) -> Result<String, String> {
    let ok = !arg.is_empty()
        && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
        && !arg.starts_with('.');
    if !ok {
        return Err(format!("{arg:?} is not a unit name"));
    }
    const TYPES: [&str; 4] = [".service", ".socket", ".timer", ".mount"];
    Ok(if TYPES.iter().any(|t| arg.ends_with(t)) { arg.to_string() } else { format!("{arg}.service") })
}

/// The drop-in text. systemd does not expand variables in `Environment=`: an
/// `LD_PRELOAD` the unit sets itself is replaced, so it is named here to be merged.
/// `EXECGUARD_FOLLOW=1` keeps the shim in what the service execs with an
/// environment of its own making: nginx hands the new binary of its binary upgrade,
/// and its workers' commands, only the variables its `env` directives name, so
/// without it an upgraded nginx runs without the shim.
pub fn drop_in(unit: &str, lib: &Path, mode: &str, log: &str) -> String {
    format!(
        "# Written by `execguard systemd {unit}`: preloads the execguard shim into this\n\
         # service. Roll back: remove this file, then `systemctl daemon-reload` and restart.\n\
         # If {unit} sets LD_PRELOAD itself, list its libraries here too (after ours):\n\
         # this assignment replaces the unit's. EXECGUARD_FOLLOW keeps the shim in the\n\
         # programs the service execs with an environment of its own making.\n\
         [Service]\n\
         Environment=LD_PRELOAD={lib}\n\
         Environment=EXECGUARD_LOG={log}\n\
         Environment=EXECGUARD_MODE={mode}\n\
         Environment=EXECGUARD_FOLLOW=1\n",
        lib = lib.display()
    )
}

pub fn systemd(a: SystemdArgs) -> i32 {
    let unit = match unit_name(&a.unit) {
        Ok(u) => u,
        Err(e) => return super::fail(e),
    };
    let lib = match find_lib_or(a.lib.as_deref()) {
        Ok(l) => l,
        Err(e) => return super::fail(e),
    };
    if lib.as_os_str().to_string_lossy().contains([' ', ':', '"', '\\', '%', '$']) {
        return super::fail(format!("{} holds a character a unit file or LD_PRELOAD cannot carry; pass --lib", lib.display()));
    }
    if a.log.contains(['\n', ' ', '"', '\\', '%', '$']) {
        return super::fail(format!("--log {:?}: a path without spaces, quotes, % or $", a.log));
    }
    let text = drop_in(&unit, &lib, a.mode.as_str(), &a.log);
    if !a.install {
        print!("{text}");
        return 0;
    }
    let dir: PathBuf = a.dir.join(format!("{unit}.d"));
    let path = dir.join(DROP_IN);
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        // Written beside, then renamed: systemd never reads half a file.
        let tmp = dir.join(format!(".{DROP_IN}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    });
    if let Err(e) = written {
        return super::fail(format!("cannot write {}: {}", path.display(), super::outcomes::io_error(&e)));
    }
    eprintln!("execguard: wrote {}", path.display());
    eprintln!("execguard: now run: systemctl daemon-reload && systemctl restart {unit}");
    eprintln!("execguard: roll back: rm {} && systemctl daemon-reload && systemctl restart {unit}", path.display());
    0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_and_text() {
        assert_eq!(unit_name("nginx").unwrap(), "nginx.service");
        assert_eq!(unit_name("uwsgi@app.service").unwrap(), "uwsgi@app.service");
        assert!(unit_name("../etc").is_err());
        assert!(unit_name("a b").is_err());
        let t = drop_in("nginx.service", Path::new("/usr/lib/x/libexecguard.so"), "fix", "journal");
        assert!(t.contains("\n[Service]\nEnvironment=LD_PRELOAD=/usr/lib/x/libexecguard.so\n"));
        assert!(t.ends_with("EXECGUARD_LOG=journal\nEnvironment=EXECGUARD_MODE=fix\nEnvironment=EXECGUARD_FOLLOW=1\n"));
    }
}
