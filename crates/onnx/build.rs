//! Compiles `proto/onnx.proto` (ONNX 1.19.1, unmodified) into Rust with rust-protobuf's
//! pure-Rust parser.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    protobuf_codegen::Codegen::new()
        .pure()
        .includes(["proto"])
        .input("proto/onnx.proto")
        .cargo_out_dir("proto")
        .run_from_script();
}
