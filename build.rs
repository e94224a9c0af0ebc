//! Compiles the one piece of C: INCRBYFLOAT's long double arithmetic (see csrc/ldouble.c).

fn main() {
    println!("cargo:rerun-if-changed=csrc/ldouble.c");
    cc::Build::new().file("csrc/ldouble.c").compile("raftis_ldouble");
}
