//! `sipl`: the one command-line tool (the commands are in the `sipl` library, src/lib.rs).

fn main() -> std::process::ExitCode {
    sipl::main_with(sipl::FaultPlan::none())
}
