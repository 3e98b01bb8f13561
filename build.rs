// Builds the only C in the library: the variadic execl* entry points.
fn main() {
    println!("cargo:rerun-if-changed=src/c/execl.c");
    println!("cargo:rerun-if-changed=src/c/tls.c");
    cc::Build::new().file("src/c/execl.c").file("src/c/tls.c").flag_if_supported("-fvisibility=default").compile("execguard_execl");
}
