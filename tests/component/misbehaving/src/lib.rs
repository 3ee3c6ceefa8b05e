//! A `skiff:model` component that misbehaves when asked (see Cargo.toml).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "model",
});

use exports::skiff::model::predictor::{Guest, Metadata};
use skiff::model::types::{Datatype, Error, IoSpec, Tensor, TensorData};

struct Misbehaving;

impl Guest for Misbehaving {
    fn describe() -> Result<Metadata, Error> {
        let spec = |name: &str| IoSpec {
            name: name.into(),
            datatype: Datatype::Fp32,
            shape: vec![-1, 1],
        };
        Ok(Metadata {
            name: "misbehaving".into(),
            inputs: vec![spec("x")],
            outputs: vec![spec("y")],
            labels: Vec::new(),
            properties: Vec::new(),
        })
    }

    fn predict(inputs: Vec<Tensor>) -> Result<Vec<Tensor>, Error> {
        let Some(Tensor {
            shape,
            data: TensorData::Fp32(x),
            ..
        }) = inputs.into_iter().next()
        else {
            return Err(Error::BadInput("x must be fp32".into()));
        };
        match x.first() {
            Some(1.0) => loop {
                std::hint::black_box(&x);
            },
            Some(2.0) => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some(3.0) => panic!("told to panic"),
            _ => Ok(vec![Tensor {
                name: "y".into(),
                shape,
                data: TensorData::Fp32(x.iter().map(|v| v * 2.0).collect()),
            }]),
        }
    }
}

export!(Misbehaving);
