//! Shared by the key-service integration tests: the built module and a fresh
//! token on it.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};

/// The PKCS#11 module: `STRONGROOM_MODULE`, else the one cargo built next to
/// this test (`target/<profile>/libstrongroom_pkcs11.so`).
pub fn module_path() -> PathBuf {
    if let Ok(m) = std::env::var("STRONGROOM_MODULE") {
        return PathBuf::from(m);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let m = profile_dir.join("libstrongroom_pkcs11.so");
    assert!(
        m.exists(),
        "{} is missing: build the module first (cargo build -p strongroom, same profile) or set STRONGROOM_MODULE",
        m.display()
    );
    m
}

/// Points the module at a fresh store under `dir` (cheap PIN KDF), then
/// initialises a token labelled `label` and sets each of `user_pins` in an SO
/// session (`name:password` makes a crypto user). Set before the module's
/// C_Initialize: one test per binary. Returns the module path and the
/// initialised context.
pub fn token_with_users(
    dir: &Path,
    label: &str,
    so_pin: &str,
    user_pins: &[&str],
) -> (PathBuf, Pkcs11) {
    std::env::set_var("STRONGROOM_STORE", dir.join("store"));
    std::env::set_var("STRONGROOM_KDF_MEMORY_KIB", "64");
    std::env::set_var("STRONGROOM_KDF_ITERATIONS", "1");
    let module = module_path();
    let ctx = Pkcs11::new(&module).expect("load module");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = ctx.get_all_slots().expect("slots")[0];
    let so = AuthPin::from(so_pin.to_string());
    ctx.init_token(slot, &so, label).expect("C_InitToken");
    let s = ctx.open_rw_session(slot).expect("session");
    s.login(UserType::So, Some(&so)).expect("SO login");
    for pin in user_pins {
        s.init_pin(&AuthPin::from(pin.to_string()))
            .expect("C_InitPIN");
    }
    s.logout().expect("logout");
    drop(s);
    (module, ctx)
}
