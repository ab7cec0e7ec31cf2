// Tells the tests which target they were built for, so the `cc` crate can find the C compiler
// for the C fixtures outside a build script (tests/c_isolated.rs).
fn main() {
    println!(
        "cargo:rustc-env=TARGET_TRIPLE={}",
        std::env::var("TARGET").expect("cargo sets TARGET for build scripts")
    );
}
