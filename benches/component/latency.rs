//! A model as a component in wasmtime beside the same model's ONNX file natively (tract), in
//! process: single-row and 1,024-row predictions on warm instances, and the cold start (a
//! fresh instance and one row), of the component as packed (its model loaded at pack time) and
//! of one packed with --no-preinit (whose every instance parses the model).
//!
//! usage: benches/component/run.sh (fits the models, packs the components, then runs this
//! with SKIFF_BENCH_COMPONENTS pointing at them)

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use skiff_component::ComponentOptions;
use skiff_runtime::{Model, Tensor, TensorData};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// The models run.sh writes: `NAME.onnx` beside `NAME.wasm`, each with 4 features.
const MODELS: [&str; 2] = ["logistic-regression", "random-forest-classifier"];

fn rows(n: usize) -> Tensor {
    let iris = [5.1f32, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3];
    let data = (0..n).flat_map(|i| iris[(i % 2) * 4..(i % 2) * 4 + 4].to_vec());
    Tensor::new(vec![n, 4], TensorData::Fp32(data.collect())).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = PathBuf::from(
        std::env::var_os("SKIFF_BENCH_COMPONENTS")
            .expect("SKIFF_BENCH_COMPONENTS is set (run benches/component/run.sh)"),
    );
    for name in MODELS {
        let onnx = std::fs::read(dir.join(format!("{name}.onnx"))).unwrap();
        let wasm = std::fs::read(dir.join(format!("{name}.wasm"))).unwrap();
        let native = Model::from_bytes(name, &onnx).unwrap();
        let started = std::time::Instant::now();
        let warm = skiff_component::load(name, &wasm, &[], &ComponentOptions::default()).unwrap();
        eprintln!(
            "{name}: component compiled and loaded in {:?}",
            started.elapsed()
        );
        // No instance kept: every run starts a fresh one.
        let cold_options = ComponentOptions {
            instances: 0,
            ..ComponentOptions::default()
        };
        let cold = skiff_component::load(name, &wasm, &[], &cold_options).unwrap();
        // The same model packed with --no-preinit: every fresh instance parses it.
        let unloaded = std::fs::read(dir.join(format!("{name}.no-preinit.wasm"))).unwrap();
        let cold_unloaded = skiff_component::load(name, &unloaded, &[], &cold_options).unwrap();

        let mut group = c.benchmark_group(format!("component/{name}"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3));
        for n in [1usize, 1024] {
            let input = rows(n);
            group.bench_with_input(BenchmarkId::new("native", n), &input, |b, x| {
                b.iter(|| black_box(native.run(vec![x.clone()]).unwrap()))
            });
            group.bench_with_input(BenchmarkId::new("wasm-warm", n), &input, |b, x| {
                b.iter(|| black_box(warm.run(vec![x.clone()]).unwrap()))
            });
        }
        group.bench_with_input(BenchmarkId::new("wasm-cold-start", 1), &rows(1), |b, x| {
            b.iter(|| black_box(cold.run(vec![x.clone()]).unwrap()))
        });
        group.bench_with_input(
            BenchmarkId::new("wasm-cold-start-no-preinit", 1),
            &rows(1),
            |b, x| b.iter(|| black_box(cold_unloaded.run(vec![x.clone()]).unwrap())),
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
