//! Stand-alone driver for the CLI (the `berth` binary normally dispatches to
//! `engine_cli::main`): `cargo run -p engine_cli --example berth-cli -- ps -a`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(engine_cli::main(args));
}
