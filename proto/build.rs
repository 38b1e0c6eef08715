//! Compiles the gRPC contract with protox (a pure-Rust protobuf compiler), so a
//! machine with only the Rust toolchain can build it: no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/attestor/v1/attestor.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
