//! Link flags for the PKCS#11 module.

fn main() {
    // `-z nodelete`: dlclose never unloads the module. The module keeps
    // per-thread state with destructors (the thread's module reference, the
    // audit context), and glibc runs those destructors at thread or process
    // exit, after applications (and the `cryptoki` crate's Drop) have
    // dlclosed the library: unloaded, the destructors would jump into unmapped
    // code. A PKCS#11 module that stays mapped until exit costs nothing else.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
