use anyhow::Result;
use skiff_learn::Params;

#[derive(clap::Args)]
pub struct Args {
    /// Print the catalog as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let catalog = skiff_learn::catalog();
    if args.json {
        let list: Vec<_> = catalog
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name(),
                    "task": a.task(),
                    "summary": a.summary(),
                    "hyperparameters": a.hyperparameters(),
                })
            })
            .collect();
        return super::print_json(&serde_json::Value::Array(list));
    }
    for a in &catalog {
        say!("{} ({}): {}", a.name(), a.task().as_str(), a.summary())?;
        if let serde_json::Value::Object(params) = a.hyperparameters() {
            let defaults: Vec<String> = params
                .iter()
                .map(|(name, value)| format!("{name}={}", text(value)))
                .collect();
            say!("    {}", defaults.join("  "))?;
        }
    }
    // What a table with text or gaps goes through first (skiff fit --print-pipeline shows it
    // for a given table), with the defaults skiff fit gives each step.
    say!("\npreprocessing of tables with text or gaps (--set STEP.NAME=VALUE):")?;
    let steps = skiff_learn::ColumnTransformer::new(None).to_json();
    for step in skiff_learn::preprocess::STEPS {
        let (name, params) = match &steps[step] {
            serde_json::Value::Object(map) if map.len() == 1 && step == "encoder" => {
                let (name, params) = map.iter().next().expect("one encoder");
                (name.clone(), params.clone())
            }
            params => (
                skiff_learn::SimpleImputerParams::ALGORITHM.to_string(),
                params.clone(),
            ),
        };
        let values: Vec<String> = params
            .as_object()
            .into_iter()
            .flatten()
            .map(|(n, v)| format!("{n}={}", text(v)))
            .collect();
        say!("{step} ({name})\n    {}", values.join("  "))?;
    }
    say!("scaler: --scale standard|min-max|robust|none")?;
    Ok(())
}

/// A default as `--set` takes it.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "None".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
