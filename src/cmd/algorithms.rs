use anyhow::Result;

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
