//! Stand-alone runtime binary for manual testing and benchmarks:
//! `oci-runtime <runc-style args>` behaves like `berth runtime <args>`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(oci_runtime::main(args));
}
