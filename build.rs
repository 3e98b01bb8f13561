// Builds the only C in the library: the variadic execl* entry points.
fn main() {
    println!("cargo:rerun-if-changed=src/c/execl.c");
    cc::Build::new().file("src/c/execl.c").flag_if_supported("-fvisibility=default").compile("execguard_execl");
}
