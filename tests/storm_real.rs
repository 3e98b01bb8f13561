//! Incident 5 with the real nginx (Debian's, with the Lua module and lua-resty-core):
//! the write-up's `balancer_by_lua_block` + `keepalive` configuration against the
//! write-up's upstream must not storm (the bug was fixed upstream in 2016: nginx
//! answers 502) and logs no `connect_storm`; a Lua retry loop that today's nginx does
//! run (`set_more_tries` with unlimited `proxy_next_upstream_tries`) is caught; and a
//! reverse proxy without keepalive under a few thousand requests per second to a
//! healthy upstream logs nothing. Ports 26100-26199.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";
const MODDIR: &str = "/usr/lib/nginx/modules";

/// A process group this test started, killed whole when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test created (pgid == pid).
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// nginx's workers drop to `nobody`: the directory and the log must be theirs too.
fn world_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("execguard-storm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    set_mode(&d, 0o755);
    d
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The write-up's upstream (c-tests/connect_storm.c `serve`), without the shim.
fn upstream(port: u16, dir: &Path) -> (Group, PathBuf) {
    let count = dir.join("upstream.count");
    let child = Command::new(common::c_prog("connect_storm"))
        .args(["serve", &port.to_string(), "25"])
        .arg(&count)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_port(port);
    (Group(child), count)
}

fn connections(count: &Path) -> u64 {
    let t = std::fs::read_to_string(count).unwrap_or_default();
    t.trim().trim_start_matches("connections=").trim_matches('\0').parse().unwrap_or(0)
}

fn wait_port(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx under the shim (log mode, JSON log `dir/log.jsonl`), master + 1 worker.
fn nginx(dir: &Path, http: &str, port: u16) -> Group {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         load_module {MODDIR}/ndk_http_module.so;\nload_module {MODDIR}/ngx_http_lua_module.so;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/tb;\n proxy_temp_path {d}/tp;\n fastcgi_temp_path {d}/tf;\n\
          uwsgi_temp_path {d}/tu;\n scgi_temp_path {d}/ts;\n{http}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let log = dir.join("log.jsonl");
    std::fs::write(&log, "").unwrap();
    set_mode(&log, 0o666);
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .env("LD_PRELOAD", common::shim())
        .env("EXECGUARD_MODE", "log")
        .env("EXECGUARD_LOG", &log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_port(port);
    Group(child)
}

/// One HTTP/1.0 GET: (status, seconds).
fn get(port: u16, path: &str) -> (u16, f64) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, t0.elapsed().as_secs_f64())
}

fn storms(dir: &Path) -> Vec<serde_json::Value> {
    common::named(&common::events(&dir.join("log.jsonl")), "connect_storm").into_iter().cloned().collect()
}

fn context(dir: &Path) -> String {
    format!(
        "--- log\n{}\n--- error.log (tail)\n{}",
        common::read_lossy(&dir.join("log.jsonl")),
        common::read_lossy(&dir.join("error.log")).lines().rev().take(15).collect::<Vec<_>>().join("\n")
    )
}

fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The write-up's configuration, verbatim but for the ports.
#[test]
fn writeup_balancer_keepalive_returns_502_and_does_not_storm() {
    let dir = world_dir("writeup");
    let (_up, count) = upstream(26101, &dir);
    let http = "upstream backend {\n server 0.0.0.1;\n balancer_by_lua_block {\n local balancer = require \"ngx.balancer\"\n\
                local ok, err = balancer.set_current_peer(\"127.0.0.1\", 26101)\n }\n keepalive 1;\n}\n\
                server {\n listen 127.0.0.1:26100;\n proxy_next_upstream off;\n location / {\n proxy_pass http://backend$request_uri;\n\
                proxy_http_version 1.1;\n proxy_set_header Connection \"\";\n }\n}";
    let _ng = nginx(&dir, http, 26100);
    assert_eq!(get(26100, "/").0, 200, "{}", context(&dir));
    let (status, secs) = get(26100, "/");
    assert_eq!(status, 502, "the cached connection closed: nginx gives up\n{}", context(&dir));
    assert!(secs < 2.0, "{secs}");
    std::thread::sleep(Duration::from_millis(1200));
    let n = connections(&count);
    assert!((1..=3).contains(&n), "{n} upstream connections: no loop\n{}", context(&dir));
    assert!(storms(&dir).is_empty(), "{}", context(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Today's nginx does loop when a Lua balancer adds a try at every attempt and
/// nothing caps the tries: thousands of connections a second to the same upstream
/// that closes each one. Caught within a second, from the worker, with EOF outcomes.
#[test]
fn lua_retry_loop_is_caught() {
    let dir = world_dir("retry");
    let (_up, count) = upstream(26111, &dir);
    let http = "upstream retry {\n server 0.0.0.1;\n balancer_by_lua_block {\n local balancer = require \"ngx.balancer\"\n\
                balancer.set_current_peer(\"127.0.0.1\", 26111)\n balancer.set_more_tries(1)\n }\n}\n\
                server {\n listen 127.0.0.1:26110;\n location / {\n proxy_next_upstream error timeout;\n\
                proxy_next_upstream_tries 0;\n proxy_next_upstream_timeout 2s;\n proxy_pass http://retry;\n }\n}";
    let _ng = nginx(&dir, http, 26110);
    assert_eq!(get(26110, "/").0, 200, "{}", context(&dir));
    let start = now_unix();
    let (status, _) = get(26110, "/");
    assert_eq!(status, 502, "{}", context(&dir));
    let n = connections(&count);
    assert!(n > 200, "the loop: {n} upstream connections in 2 s\n{}", context(&dir));
    let evs = storms(&dir);
    assert!(!evs.is_empty(), "{}", context(&dir));
    let ev = &evs[0];
    assert_eq!(ev["peer"], "127.0.0.1:26111", "{ev}");
    assert_eq!(ev["exe"], NGINX, "{ev}");
    assert!(ev["outcomes"]["EOF"].as_u64().unwrap_or(0) >= 50, "{ev}");
    assert!(ev["caller"].as_str().unwrap_or("").starts_with(NGINX), "{ev}");
    let ts = ev["ts"].as_f64().unwrap();
    assert!(ts >= start && ts - start < 1.0, "within a second of the loop's start ({start}): {ev}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reverse proxy without keepalive: every request is a new, short, successful
/// upstream connection. Thousands a second, no storm.
#[test]
fn proxy_without_keepalive_under_load_does_not_storm() {
    let dir = world_dir("load");
    let http = "server {\n listen 127.0.0.1:26120;\n location / {\n proxy_pass http://127.0.0.1:26121;\n }\n}\n\
                server {\n listen 127.0.0.1:26121;\n location / {\n return 200 \"ok\\n\";\n }\n}";
    let _ng = nginx(&dir, http, 26120);
    let out = Command::new("ab")
        .args(["-q", "-n", "6000", "-c", "16", "http://127.0.0.1:26120/"])
        .output()
        .expect("ab (apache2-utils) is installed by scripts/test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let field = |k: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in\n{text}"))
    };
    assert_eq!(field("Complete requests:"), 6000.0, "{text}");
    assert_eq!(field("Failed requests:"), 0.0, "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    let rps = field("Requests per second:");
    eprintln!("proxy without keepalive: {rps} requests/s, each a new upstream connection");
    assert!(rps > 1000.0, "a few thousand requests per second expected, got {rps}\n{text}");
    assert!(storms(&dir).is_empty(), "{}", context(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}
