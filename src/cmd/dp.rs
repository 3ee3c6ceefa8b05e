//! `skiff dp`: differentially private summaries of a CSV file (OpenDP), and the privacy budget
//! ledger that `skiff dp describe` and `skiff fit dp-*` spend from.

use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_privacy::{Held, Ledger, Report, Request, Statistic};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Release counts, sums, means, variances and histograms of a CSV file with differential
    /// privacy (OpenDP measurements; epsilons are OpenDP's privacy maps)
    Describe(DescribeArgs),
    /// Create a privacy budget (--epsilon), or show what has been spent of one
    Budget(BudgetArgs),
}

#[derive(clap::Args)]
struct DescribeArgs {
    /// The data: CSV with a header row
    data: PathBuf,
    /// The total privacy budget of the releases, shared evenly between them
    #[arg(long)]
    epsilon: f64,
    /// Bounds of each numeric column to summarise, known without looking at the data; values
    /// outside are clamped, gaps filled with the middle
    #[arg(long, value_delimiter = ',', value_name = "COLUMN=LOWER:UPPER[,...]")]
    bounds: Vec<String>,
    /// The categories of a column with a histogram, known without looking at the data (one
    /// flag per column); rows in none of them are counted together
    #[arg(long, value_name = "COLUMN=A,B,...")]
    categories: Vec<String>,
    /// What to release: count (rows), sum, mean, var (each bounded column), hist:COLUMN
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "count",
        value_name = "STAT[,STAT...]"
    )]
    stats: Vec<String>,
    /// A budget ledger (skiff dp budget) to spend from; refused if the releases do not fit
    #[arg(long, value_name = "LEDGER")]
    budget: Option<PathBuf>,
    /// Print the releases as JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct BudgetArgs {
    /// The ledger file (JSON)
    ledger: PathBuf,
    /// Create the ledger with this total epsilon
    #[arg(long)]
    epsilon: Option<f64>,
    /// The budget's total delta (with --epsilon)
    #[arg(long, default_value_t = 0.0, requires = "epsilon")]
    delta: f64,
    /// Delta set aside for advanced composition, at most --delta; 0 adds epsilons up (with
    /// --epsilon)
    #[arg(long, default_value_t = 0.0, requires = "epsilon")]
    slack: f64,
    /// Print the ledger's state as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Describe(args) => describe(args),
        Command::Budget(args) => budget(args),
    }
}

fn describe(args: DescribeArgs) -> Result<()> {
    let request = Request {
        epsilon: args.epsilon,
        bounds: args
            .bounds
            .iter()
            .map(|b| parse_bounds(b))
            .collect::<Result<_>>()?,
        categories: args
            .categories
            .iter()
            .map(|c| parse_categories(c))
            .collect::<Result<_>>()?,
        statistics: args
            .stats
            .iter()
            .map(|s| s.parse::<Statistic>())
            .collect::<Result<_, _>>()?,
    };
    let table = Table::from_path(&args.data)?;
    let ledger = match &args.budget {
        Some(path) => {
            let held = hold(path)?;
            held.ledger().check(request.epsilon, 0.0)?;
            Some(held)
        }
        None => None,
    };
    let report = skiff_privacy::describe(&table, &request)?;
    if let Some(mut held) = ledger {
        held.spend(
            report.epsilon,
            0.0,
            &format!("dp describe {}", args.data.display()),
        )?;
    }
    if args.json {
        return super::print_json(&serde_json::to_value(&report)?);
    }
    print_report(&report, &args.data)
}

fn print_report(report: &Report, data: &Path) -> Result<()> {
    say!(
        "{} differentially private releases of {} ({}):",
        report.releases.len(),
        data.display(),
        report.neighbours
    )?;
    for release in &report.releases {
        let name = match &release.column {
            Some(column) => format!("{}({column})", release.statistic),
            None => release.statistic.to_string(),
        };
        let value = match (&release.categories, release.value.as_array()) {
            (Some(categories), Some(counts)) => categories
                .iter()
                .map(String::as_str)
                .chain(["(other)"])
                .zip(counts)
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => match release.value.as_f64() {
                Some(v) if release.statistic != "count" => format!("{v:.6}"),
                _ => release.value.to_string(),
            },
        };
        let mechanism = release.mechanism.replace('_', " ");
        say!(
            "  {name:<20} {value}  (epsilon {:.6}, {mechanism} noise of scale {:.6})",
            release.epsilon,
            release.scale
        )?;
    }
    say!(
        "total epsilon {} (OpenDP's composition; {} asked)",
        report.epsilon,
        report.epsilon_requested
    )?;
    Ok(())
}

/// `COLUMN=LOWER:UPPER`.
fn parse_bounds(text: &str) -> Result<(String, (f64, f64))> {
    let parsed = text.split_once('=').and_then(|(column, range)| {
        let (lower, upper) = range.split_once(':')?;
        Some((
            column.trim().to_string(),
            (lower.trim().parse().ok()?, upper.trim().parse().ok()?),
        ))
    });
    match parsed {
        Some((column, bounds)) if !column.is_empty() => Ok((column, bounds)),
        _ => bail!("--bounds {text:?} is not COLUMN=LOWER:UPPER (e.g. age=0:100)"),
    }
}

/// `COLUMN=A,B,...`.
fn parse_categories(text: &str) -> Result<(String, Vec<String>)> {
    match text.split_once('=') {
        Some((column, list)) if !column.trim().is_empty() => {
            let categories: Vec<String> = list
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            Ok((column.trim().to_string(), categories))
        }
        _ => bail!("--categories {text:?} is not COLUMN=A,B,... (e.g. island=Biscoe,Dream)"),
    }
}

fn budget(args: BudgetArgs) -> Result<()> {
    let ledger = match args.epsilon {
        Some(epsilon) => {
            if args.ledger.exists() {
                bail!(
                    "{} already exists: a budget is set once (show it with skiff dp budget {}, \
                     or start a new one in another file)",
                    args.ledger.display(),
                    args.ledger.display()
                );
            }
            let ledger = Ledger::new(epsilon, args.delta, args.slack)?;
            ledger.save(&args.ledger)?;
            ledger
        }
        None => Ledger::open(&args.ledger)?,
    };
    let (spent, spent_delta) = ledger.total();
    if args.json {
        let mut value = serde_json::to_value(&ledger)?;
        value["spent_epsilon"] = serde_json::json!(spent);
        value["spent_delta"] = serde_json::json!(spent_delta);
        value["remaining_epsilon"] = serde_json::json!(ledger.remaining());
        return super::print_json(&value);
    }
    say!(
        "budget {}: epsilon {}, delta {}{}",
        args.ledger.display(),
        ledger.epsilon,
        ledger.delta,
        if ledger.slack > 0.0 {
            format!(" (advanced composition, slack {})", ledger.slack)
        } else {
            String::new()
        }
    )?;
    for spend in &ledger.spent {
        say!("  epsilon {:<10} {}", spend.epsilon, spend.what)?;
    }
    say!(
        "spent epsilon {spent} and delta {spent_delta}; at most {} left for one more release",
        ledger.remaining()
    )?;
    Ok(())
}

/// Holds the ledger at `path` for a spend, saying so on stderr if another process holds it.
fn hold(path: &Path) -> Result<Held> {
    Ok(Ledger::hold(path, || {
        eprintln!(
            "skiff: waiting for {}: another fit or release is spending from it",
            path.display()
        )
    })?)
}

/// Holds the ledger at `path` and checks that a fit of `algorithm` may spend from it, before
/// fitting.
pub fn check_fit(path: &Path, algorithm: &dyn skiff_learn::Algorithm) -> Result<Held> {
    let Some(epsilon) = algorithm.privacy() else {
        bail!(
            "--budget records private fits, and {} is not differentially private (dp-gaussian-nb \
             and dp-logistic-regression are)",
            algorithm.name()
        );
    };
    if epsilon.is_infinite() {
        bail!("epsilon=inf adds no noise, so the fit is not private: a budget cannot record it");
    }
    let held = hold(path)?;
    held.ledger()
        .check(epsilon, 0.0)
        .with_context(|| format!("{} refused the fit", path.display()))?;
    Ok(held)
}
