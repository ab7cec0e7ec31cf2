// Tells the tests which target they were built for, so the `cc` crate can find the C compiler
// for it outside a build script (ffi/c/tests/common).
fn main() {
    println!(
        "cargo:rustc-env=TARGET_TRIPLE={}",
        std::env::var("TARGET").expect("cargo sets TARGET for build scripts")
    );
}
