//! Compiles the inference protocol's gRPC service (proto/) into tonic code, with `protox`: no
//! `protoc` on the build machine, and the build script runs on the host when cross-building.

fn main() {
    #[cfg(feature = "server")]
    grpc();
}

#[cfg(feature = "server")]
fn grpc() {
    const PROTO: &str = "proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let files = protox::compile([PROTO], ["proto"]).unwrap_or_else(|e| panic!("{PROTO}: {e}"));
    tonic_prost_build::configure()
        // The client is generic over the transport: clients bring their own channel.
        .build_client(true)
        .build_transport(false)
        .compile_fds(files)
        .unwrap_or_else(|e| panic!("generating the gRPC code of {PROTO}: {e}"));
}
