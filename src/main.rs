//! The `kontaktvei` binary: everything lives in the gateway crate; this is only the door.

fn main() -> std::process::ExitCode {
    kontaktvei_gateway::cli::run()
}
