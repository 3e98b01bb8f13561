//! `--format sarif`: SARIF 2.1.0 (serde-sarif's types), one result per distinct
//! finding, a rule per event kind, the source line where the fd was created or the
//! mask blocked as the physical location (relative to `%SRCROOT%`, as GitHub code
//! scanning and GitLab expect), module+offset as a logical location otherwise.
//! CLI only.

use super::ci::{self, Opts, Site};
use super::events::{Event, FROM_OUTSIDE, WARNING_KINDS};
use super::findings;
use super::rules;
use super::symbolize::Symbolizer;
use serde_json::json;
use serde_sarif::sarif as s;
use std::collections::BTreeMap;

const SRCROOT: &str = "SRCROOT";

pub fn render(events: &[Event], sym: &mut Symbolizer, o: &Opts) -> String {
    let fs = findings::findings(events);
    let results: Vec<s::Result> = fs.iter().map(|f| result(f, sym, o)).collect();
    let mut bases = BTreeMap::new();
    bases.insert(
        SRCROOT.to_string(),
        s::ArtifactLocation::builder().uri(dir_uri(&o.source_root.to_string_lossy())).build(),
    );
    let driver = s::ToolComponent::builder()
        .name("execguard")
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(WARNING_KINDS.iter().map(|k| rule(rules::rule(k))).collect::<Vec<_>>())
        .build();
    // GitHub turns absolute file URIs into repository paths from this directory (it
    // does not read originalUriBaseIds).
    let invocation = s::Invocation::builder()
        .execution_successful(true)
        .working_directory(s::ArtifactLocation::builder().uri(dir_uri(&o.source_root.to_string_lossy())).build())
        .build();
    let run = s::Run::builder()
        .tool(driver)
        .invocations(vec![invocation])
        .results(results)
        .original_uri_base_ids(bases)
        .build();
    let log = s::Sarif::builder().schema(s::SCHEMA_URL).version(json!("2.1.0")).runs(vec![run]).build();
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

fn rule(r: &rules::Rule) -> s::ReportingDescriptor {
    s::ReportingDescriptor::builder()
        .id(r.id)
        .name(r.name)
        .short_description(s::MultiformatMessageString::builder().text(r.short).build())
        .full_description(s::MultiformatMessageString::builder().text(r.short).build())
        .help(s::MultiformatMessageString::builder().text(r.help).build())
        .default_configuration(s::ReportingConfiguration::builder().level(json!("warning")).build())
        .build()
}

fn result(f: &findings::Finding, sym: &mut Symbolizer, o: &Opts) -> s::Result {
    let e = f.first();
    let sites = ci::sites(f, sym, o);
    let mut locations: Vec<s::Location> = sites.iter().filter_map(physical).collect();
    let logical: Vec<s::LogicalLocation> = sites.iter().filter(|s| physical(s).is_none()).map(logical).collect();
    if locations.is_empty() {
        // Code scanning refuses a result without a physical location: name the
        // program to fix, whose code could not be placed on a line.
        locations.extend(program(e));
    }
    if !logical.is_empty() {
        match locations.first_mut() {
            Some(first) => first.logical_locations.get_or_insert_with(Vec::new).extend(logical),
            None => locations.push(s::Location::builder().logical_locations(logical).build()),
        }
    }
    let mut props = BTreeMap::new();
    props.insert("event".to_string(), json!(e.event));
    props.insert("exe".to_string(), json!(e.exe));
    props.insert("tests".to_string(), json!(f.tests));
    props.insert("processes".to_string(), json!(f.events.iter().map(|e| e.pid).collect::<std::collections::BTreeSet<_>>()));
    props.insert("fixed".to_string(), json!(f.fixed()));
    if f.is_from_outside() {
        props.insert("from".to_string(), json!(FROM_OUTSIDE));
    }
    let mut fp = BTreeMap::new();
    fp.insert("execguardFinding/v1".to_string(), ci::fingerprint(&f.key));
    let rule_index = WARNING_KINDS.iter().position(|k| *k == e.event);
    let mut r = s::Result::builder()
        .rule_id(rules::rule(&e.event).id)
        .level(if f.is_from_outside() { s::ResultLevel::Note } else { s::ResultLevel::Warning })
        .message(s::Message::builder().text(ci::message(f, sym, o)).build())
        .partial_fingerprints(fp)
        .occurrence_count(f.occurrences as i64)
        .properties(s::PropertyBag::builder().additional_properties(props).build())
        .build();
    // Optional members are left out rather than written empty.
    r.locations = (!locations.is_empty()).then_some(locations);
    r.rule_index = rule_index.map(|i| i as i64);
    r
}

fn physical(site: &Site) -> Option<s::Location> {
    let (file, line) = (site.file.as_ref()?, site.line?);
    let artifact = if site.relative {
        s::ArtifactLocation::builder().uri(uri_path(file)).uri_base_id(SRCROOT).build()
    } else {
        s::ArtifactLocation::builder().uri(format!("file://{}", uri_path(file))).build()
    };
    let phys = s::PhysicalLocation::builder()
        .artifact_location(artifact)
        .region(s::Region::builder().start_line(line as i64).build())
        .build();
    let mut loc = s::Location::builder()
        .physical_location(phys)
        .message(s::Message::builder().text(format!("{} here", site.what)).build())
        .build();
    loc.logical_locations =
        site.function.as_ref().map(|func| vec![s::LogicalLocation::builder().name(func).kind("function").build()]);
    Some(loc)
}

/// The program that handed the state over, as a location without a line.
fn program(e: &Event) -> Option<s::Location> {
    let (from, _) = super::report::from_to(e);
    from.starts_with('/').then(|| {
        let artifact = s::ArtifactLocation::builder().uri(format!("file://{}", uri_path(&from))).build();
        s::Location::builder()
            .physical_location(s::PhysicalLocation::builder().artifact_location(artifact).build())
            .message(s::Message::builder().text("the program to fix (no source line: build it with -g and run with --origins)").build())
            .build()
    })
}

fn logical(site: &Site) -> s::LogicalLocation {
    let name = site.function.clone().unwrap_or_else(|| super::symbolize::short_module(&site.spec));
    s::LogicalLocation::builder().name(name).fully_qualified_name(site.spec.clone()).kind("function").build()
}

/// A path as a URI reference: RFC 3986 unreserved bytes and '/' as they are, the
/// rest percent-encoded.
fn uri_path(p: &str) -> String {
    let mut o = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => o.push(b as char),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// `file:///dir/`: a base URI must end with '/' for relative URIs to resolve under it.
fn dir_uri(dir: &str) -> String {
    let mut u = format!("file://{}", uri_path(dir));
    if !u.ends_with('/') {
        u.push('/');
    }
    u
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::cli::events::parse_for_tests as evs;

    #[test]
    fn one_result_per_finding_with_rule_and_logical_location() {
        let e = evs(concat!(
            r#"{"event":"exec_fd_leak","severity":"warn","pid":1,"exe":"/a","target":"/b","fds":[{"fd":3,"kind":"tcp_listen","detail":"0.0.0.0:1","origin":"/nonexistent/a+0x10"}]}"#, "\n",
            r#"{"event":"exec_fd_leak","severity":"warn","pid":2,"exe":"/a","target":"/b","fds":[{"fd":3,"kind":"tcp_listen","detail":"0.0.0.0:1","origin":"/nonexistent/a+0x10"}]}"#, "\n",
        ));
        let o = Opts { source_root: "/src root".into(), symbols: true };
        let v: serde_json::Value = serde_json::from_str(&render(&e, &mut Symbolizer::default(), &o)).unwrap();
        let run = &v["runs"][0];
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(run["results"].as_array().unwrap().len(), 1);
        let r = &run["results"][0];
        assert_eq!(r["ruleId"], "exec_fd_leak");
        assert_eq!(r["occurrenceCount"], 2);
        assert_eq!(run["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().unwrap() as usize]["id"], "exec_fd_leak");
        assert_eq!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "file:///a");
        assert_eq!(r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], "/nonexistent/a+0x10");
        assert_eq!(run["invocations"][0]["workingDirectory"]["uri"], "file:///src%20root/");
        assert_eq!(run["originalUriBaseIds"]["SRCROOT"]["uri"], "file:///src%20root/");
    }
}
