//! Compiles the wire schemas with protox (pure Rust, no system protoc) and prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/bzzz/v1/envelope.proto",
        "proto/bzzz/v1/raft.proto",
        "proto/bzzz/v1/context.proto",
        "proto/bzzz/v1/context_rpc.proto",
        "proto/bzzz/v1/admission.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
