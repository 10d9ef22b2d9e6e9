//! The `kontaktvei` command line: `serve`, `migrate`, and the operator's `admin` commands.
//! Errors end in one line on stderr and a non-zero exit: 2 for bad configuration or usage,
//! 1 for everything else.

use crate::config::{Config, ConfigError};
use clap::{Parser, Subcommand};
use kontaktvei_store::audit::{self, Actor, Outcome};
use kontaktvei_store::organisations::{self, NewOrganisation, OrganisationKind};
use kontaktvei_store::staff::{self, Role};
use kontaktvei_store::{Clock, Id, Store, StoreOptions, SystemClock};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "kontaktvei",
    version,
    about = "Contact gateway for patients without BankID, fixed address or stable phone"
)]
struct Cli {
    /// TOML configuration file (also KONTAKTVEI_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies migrations first).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply database migrations and exit; running it again is harmless.
    Migrate,
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Letters.
    Letter {
        #[command(subcommand)]
        command: LetterCommand,
    },
    /// The print room: batches, the PDF, posted and returned letters.
    Print {
        #[command(subcommand)]
        command: PrintCommand,
    },
    /// Run the reach simulation: the real engine in virtual time against a simulated population,
    /// through three strategies (sms_only, sms_then_letter, kontaktvei).
    Simulate {
        #[arg(long, default_value_t = 1000)]
        patients: usize,
        /// Days during which the clinic books appointments.
        #[arg(long, default_value_t = 90)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A scenario TOML file, or a shipped one by name: tsb_rop (default), general_outpatient.
        #[arg(long, value_name = "FILE")]
        scenario: Option<String>,
        /// Print the results as JSON (and no chart).
        #[arg(long)]
        json: bool,
        /// Where to write the SVG chart of reach over time (without --json).
        #[arg(long, value_name = "FILE", default_value = "kontaktvei-reach.svg")]
        chart: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PrintCommand {
    /// List an organisation's print batches, one JSON object per line, newest first.
    Batches {
        #[arg(long, value_name = "ID", value_parser = parse_text::<Id>)]
        org: Id,
    },
    /// Put every letter waiting for a print run in a batch now; prints the batches made.
    Now {
        #[arg(long, value_name = "ID", value_parser = parse_text::<Id>)]
        org: Id,
    },
    /// Write a batch's letters as one PDF (each letter from an odd page).
    Pdf {
        #[arg(long, value_name = "ID", value_parser = parse_text::<Id>)]
        batch: Id,
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// The batch went in the post (today, or --on YYYY-MM-DD).
    Posted {
        #[arg(long, value_name = "ID", value_parser = parse_text::<Id>)]
        batch: Id,
        #[arg(long, value_name = "DATE")]
        on: Option<chrono::NaiveDate>,
    },
    /// A letter came back: its reference (printed on it) and why.
    Returned {
        #[arg(long)]
        reference: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum LetterCommand {
    /// Render a letter to a PDF file: a notice's letter, or a sample to see the layout.
    Render {
        /// The notice whose letter to render.
        #[arg(long, value_name = "ID", value_parser = parse_text::<Id>, conflicts_with = "sample")]
        notice: Option<Id>,
        /// Render the built-in sample letter (no data needed).
        #[arg(long)]
        sample: bool,
        /// Where to write the PDF.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Add an organisation with an admin API key; prints {"organisation_id","api_key"}.
    AddOrg {
        #[arg(long)]
        name: String,
        /// clinic, low_threshold_service, outreach_team or home_services.
        #[arg(long, value_parser = parse_text::<OrganisationKind>)]
        kind: OrganisationKind,
        #[arg(long, default_value = "Europe/Oslo")]
        time_zone: String,
        #[arg(long)]
        staff_email: Option<String>,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Staff members' logins to the staff web pages.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Give a staff member a username and password for the staff pages (or new ones: their
    /// open sessions end). Reads the password, one line of at least 12 characters, from stdin;
    /// prints {"staff_id","username"}.
    Password {
        #[arg(long, value_name = "STAFF_ID", value_parser = parse_text::<Id>)]
        staff: Id,
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key for an organisation; prints {"organisation_id","api_key"}.
    Create {
        #[arg(long, value_name = "ID", value_parser = parse_text::<Id>)]
        org: Id,
        /// admin, clinic, print, relay, outreach or coordinator.
        #[arg(long, value_parser = parse_text::<Role>)]
        role: Role,
        /// What the key is for, e.g. "EPJ integration".
        #[arg(long)]
        label: Option<String>,
        /// A personal key: it acts for this staff member (claims and closes tasks in their name).
        #[arg(long, value_name = "STAFF_ID", value_parser = parse_text::<Id>)]
        staff: Option<Id>,
    },
}

fn parse_text<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

/// Runs the command line and returns the process's exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let listen_flag = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let config = match Config::from_process(cli.config.as_deref(), listen_flag.as_deref()) {
        // The simulation plans tens of thousands of notices: only errors are worth a line.
        Ok(c) if matches!(cli.command, Command::Simulate { .. }) => Config {
            log_level: "error".into(),
            ..c
        },
        Ok(c) => c,
        Err(ConfigError { key, message }) => {
            eprintln!("kontaktvei: invalid configuration: {key}: {message}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kontaktvei: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kontaktvei: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Store errors with field lists become "field: message; field: message".
fn one_line(e: &anyhow::Error) -> String {
    if let Some(kontaktvei_store::Error::Invalid(fields)) = e.downcast_ref() {
        return fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    format!("{e:#}").replace('\n', " ")
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&StoreOptions {
        url: config.database_url.clone(),
        max_connections: config.database_max_connections,
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    store.migrate().await?;
    Ok(store)
}

/// `simulate`: the three strategies on the same population; a table and a chart, or JSON.
async fn simulate(
    patients: usize,
    days: u32,
    seed: u64,
    scenario: Option<&str>,
    json: bool,
    chart: &std::path::Path,
) -> anyhow::Result<()> {
    use kontaktvei_scheduler::simulate::{self, Scenario, SimConfig, scenario as shipped};
    if !(1..=1_000_000).contains(&patients) {
        anyhow::bail!("--patients: give 1 to 1,000,000");
    }
    if !(1..=3650).contains(&days) {
        anyhow::bail!("--days: give 1 to 3,650");
    }
    let text = match scenario {
        None | Some("tsb_rop") => shipped::TSB_ROP.to_owned(),
        Some("general_outpatient") => shipped::GENERAL_OUTPATIENT.to_owned(),
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("--scenario: cannot read {path}: {e} (or name a shipped one: tsb_rop, general_outpatient)")
        })?,
    };
    let scenario = Scenario::parse(&text).map_err(|e| anyhow::anyhow!("--scenario: {e}"))?;
    let config = SimConfig {
        patients,
        days,
        seed,
        scenario,
    };
    let started = std::time::Instant::now();
    let (report, timings) = simulate::run(&config)?;
    let took = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"strategies": report.strategies}))?
        );
    } else {
        print!("{}", report.table());
        std::fs::write(chart, report.chart_svg()?)
            .map_err(|e| anyhow::anyhow!("--chart: cannot write {}: {e}", chart.display()))?;
        println!("\nreach over time: {}", chart.display());
    }
    let each: Vec<String> = timings
        .iter()
        .map(|(s, secs)| format!("{} {secs:.1} s", s.name()))
        .collect();
    eprintln!(
        "simulated {patients} patients x {days} days x 3 strategies in {took:.1} s ({})",
        each.join(", ")
    );
    Ok(())
}

/// `letter render`: a notice's letter (its address read and audited as the operator's), or
/// the sample.
async fn render_letter(
    config: &Config,
    clock: Arc<dyn Clock>,
    notice: Option<Id>,
    sample: bool,
    output: &std::path::Path,
) -> anyhow::Result<()> {
    let content = match (notice, sample) {
        (_, true) => kontaktvei_channels::letter::LetterContent::sample(),
        (Some(notice), false) => {
            let store = open_store(config).await?;
            let engine = kontaktvei_scheduler::Engine::new(
                store.clone(),
                clock.clone(),
                kontaktvei_scheduler::EngineConfig {
                    public_base_url: String::new(),
                    instance: "cli".into(),
                    postal: kontaktvei_scheduler::calendar::PostalCalendar::default(),
                },
            );
            let now = clock.now();
            let mut tx = store.begin().await?;
            let content = engine
                .letter_for_notice(
                    &mut tx,
                    notice,
                    kontaktvei_scheduler::calendar::oslo_date(now),
                )
                .await
                .map_err(|e| anyhow::anyhow!("--notice: {e}"))?;
            let patient = kontaktvei_store::notices::get(&mut tx, notice)
                .await?
                .patient_id;
            audit::record(
                &mut tx,
                &Actor::operator(),
                "letter.render",
                Some(patient),
                Some(notice),
                Outcome::Allowed,
                now,
            )
            .await?;
            tx.commit().await?;
            store.close().await;
            content
        }
        (None, false) => anyhow::bail!("give --notice ID, or --sample to see the layout"),
    };
    let pdf = kontaktvei_channels::letter::render(&content)
        .map_err(|e| anyhow::anyhow!("cannot render the letter: {e}"))?;
    std::fs::write(output, pdf)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
    eprintln!("wrote {}", output.display());
    Ok(())
}

/// The print room's commands, as the operator (each read of letters is audited as such).
async fn print_room(
    config: &Config,
    clock: Arc<dyn Clock>,
    command: PrintCommand,
) -> anyhow::Result<()> {
    use kontaktvei_store::print;
    let store = open_store(config).await?;
    let engine = kontaktvei_scheduler::Engine::new(
        store.clone(),
        clock.clone(),
        kontaktvei_scheduler::EngineConfig {
            public_base_url: String::new(),
            instance: "cli".into(),
            postal: kontaktvei_scheduler::calendar::PostalCalendar::default(),
        },
    );
    let now = clock.now();
    let result = async {
        match command {
            PrintCommand::Batches { org } => {
                let mut tx = store.begin_read().await?;
                for b in print::batches(&mut tx, org, 100).await? {
                    println!("{}", serde_json::to_string(&b)?);
                }
                tx.commit().await?;
            }
            PrintCommand::Now { org } => {
                organisations::get(&mut store.begin_read().await?, org)
                    .await
                    .map_err(|_| anyhow::anyhow!("--org: no organisation has the id {org}"))?;
                for b in engine.print_now(org, "operator").await? {
                    println!("{}", serde_json::to_string(&b)?);
                }
            }
            PrintCommand::Pdf { batch, output } => {
                let mut tx = store.begin().await?;
                print::batch(&mut tx, batch)
                    .await
                    .map_err(|_| anyhow::anyhow!("--batch: no print batch has the id {batch}"))?;
                let pdf = engine.batch_pdf(&mut tx, batch).await?;
                for letter in print::letters_in(&mut tx, batch).await? {
                    let patient = kontaktvei_store::notices::get(&mut tx, letter.notice_id)
                        .await?
                        .patient_id;
                    audit::record(
                        &mut tx,
                        &Actor::operator(),
                        "letter.download",
                        Some(patient),
                        Some(letter.id),
                        Outcome::Allowed,
                        now,
                    )
                    .await?;
                }
                tx.commit().await?;
                std::fs::write(&output, pdf)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
                eprintln!("wrote {}", output.display());
            }
            PrintCommand::Posted { batch, on } => {
                let mut tx = store.begin().await?;
                print::batch(&mut tx, batch)
                    .await
                    .map_err(|_| anyhow::anyhow!("--batch: no print batch has the id {batch}"))?;
                let on = on.unwrap_or_else(|| kontaktvei_scheduler::calendar::oslo_date(now));
                if !engine.mark_batch_posted(&mut tx, batch, on).await? {
                    anyhow::bail!("--batch: this batch is already posted");
                }
                tx.commit().await?;
                eprintln!("batch {batch} posted on {on}");
            }
            PrintCommand::Returned { reference, reason } => {
                if reason.trim().is_empty() {
                    anyhow::bail!("--reason: say why it came back, e.g. \"ukjent adressat\"");
                }
                let mut tx = store.begin().await?;
                let letter = engine
                    .letter_returned(&mut tx, &reference, reason.trim())
                    .await
                    .map_err(|e| match e {
                        kontaktvei_scheduler::engine::Error::Store(
                            kontaktvei_store::Error::NotFound(_),
                        ) => {
                            anyhow::anyhow!(
                                "--reference: no letter has the reference {}",
                                reference.trim()
                            )
                        }
                        other => other.into(),
                    })?;
                tx.commit().await?;
                eprintln!("letter {} recorded as returned", letter.reference);
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    store.close().await;
    result
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = match config.clock {
        Some(shifted) => {
            tracing::warn!(start = %shifted.start, speed = shifted.speed, "the clock is shifted (clock_start/clock_speed): for tests and demonstrations only");
            Arc::new(shifted)
        }
        None => Arc::new(SystemClock),
    };
    match command {
        Command::Serve { .. } => {
            let store = open_store(&config).await?;
            crate::server::serve(store, clock, &config).await
        }
        Command::Letter {
            command:
                LetterCommand::Render {
                    notice,
                    sample,
                    output,
                },
        } => render_letter(&config, clock, notice, sample, &output).await,
        Command::Print { command } => print_room(&config, clock, command).await,
        Command::Simulate {
            patients,
            days,
            seed,
            scenario,
            json,
            chart,
        } => simulate(patients, days, seed, scenario.as_deref(), json, &chart).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::AddOrg {
                    name,
                    kind,
                    time_zone,
                    staff_email,
                },
        } => {
            let store = open_store(&config).await?;
            let now = clock.now();
            let mut tx = store.begin().await?;
            let org = organisations::create(
                &mut tx,
                NewOrganisation {
                    name,
                    kind,
                    time_zone,
                    staff_email,
                },
                now,
            )
            .await?;
            let (key, secret) = staff::create_api_key(
                &mut tx,
                org.id,
                Role::Admin,
                Some("created with the organisation".into()),
                None,
                now,
            )
            .await?;
            audit::record(
                &mut tx,
                &Actor::operator(),
                "organisation.create",
                None,
                Some(org.id),
                Outcome::Allowed,
                now,
            )
            .await?;
            tx.commit().await?;
            store.close().await;
            print_key(org.id, key.id, key.role, &secret);
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Staff {
                    command: StaffCommand::Password { staff, username },
                },
        } => staff_password(&config, clock, staff, &username).await,
        Command::Admin {
            command:
                AdminCommand::Key {
                    command:
                        KeyCommand::Create {
                            org,
                            role,
                            label,
                            staff: staff_id,
                        },
                },
        } => {
            let store = open_store(&config).await?;
            let now = clock.now();
            let mut tx = store.begin().await?;
            organisations::get(&mut tx, org)
                .await
                .map_err(|_| anyhow::anyhow!("--org: no organisation has the id {org}; `kontaktvei admin add-org` creates one"))?;
            if let Some(id) = staff_id {
                let person = staff::get_staff(&mut tx, id).await.map_err(|_| {
                    anyhow::anyhow!(
                        "--staff: no staff member has the id {id}; POST /api/v1/staff adds one"
                    )
                })?;
                if person.organisation_id != org || person.role != role {
                    anyhow::bail!(
                        "--staff: that person is {} in organisation {}; give the same --org and --role",
                        person.role,
                        person.organisation_id
                    );
                }
            }
            let (key, secret) =
                staff::create_api_key(&mut tx, org, role, label, staff_id, now).await?;
            audit::record(
                &mut tx,
                &Actor::operator(),
                "api_key.create",
                None,
                Some(key.id),
                Outcome::Allowed,
                now,
            )
            .await?;
            tx.commit().await?;
            store.close().await;
            print_key(org, key.id, key.role, &secret);
            Ok(())
        }
    }
}

/// `admin staff password`: the password comes from stdin (never from the command line, where
/// other users of the machine could see it in the process list).
async fn staff_password(
    config: &Config,
    clock: Arc<dyn Clock>,
    staff_id: Id,
    username: &str,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!("Password for {username} (one line; it is shown as you type): ");
    }
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await?
    .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
    let username = crate::web::password::check_new_login(username, &password).map_err(|e| {
        // Name the flag, not the JSON field.
        match e {
            kontaktvei_store::Error::Invalid(fields) => anyhow::anyhow!(
                "{}",
                fields
                    .iter()
                    .map(|f| match f.field.as_str() {
                        "username" => format!("--username: {}", f.message),
                        _ => format!("the password (stdin): {}", f.message),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => other.into(),
        }
    })?;
    let store = open_store(config).await?;
    let result = async {
        {
            let mut tx = store.begin_read().await?;
            staff::get_staff(&mut tx, staff_id).await.map_err(|_| {
                anyhow::anyhow!(
                    "--staff: no staff member has the id {staff_id}; POST /api/v1/staff adds one"
                )
            })?;
            tx.commit().await?;
        }
        let hash = crate::web::password::hash(password).await?;
        let now = clock.now();
        let mut tx = store.begin().await?;
        let login = kontaktvei_store::accounts::set_login(&mut tx, staff_id, &username, &hash, now)
            .await
            .map_err(|e| match e {
                kontaktvei_store::Error::Invalid(fields) => anyhow::anyhow!(
                    "--username: {}",
                    fields
                        .first()
                        .map_or("is not accepted", |f| f.message.as_str())
                ),
                other => other.into(),
            })?;
        audit::record(
            &mut tx,
            &Actor::operator(),
            "staff.login.set",
            None,
            Some(staff_id),
            Outcome::Allowed,
            now,
        )
        .await?;
        tx.commit().await?;
        println!(
            "{}",
            json!({"staff_id": login.staff_id, "username": login.username})
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    store.close().await;
    result
}

fn print_key(organisation_id: Id, key_id: Id, role: Role, secret: &str) {
    println!(
        "{}",
        json!({"organisation_id": organisation_id, "api_key": secret, "key_id": key_id, "role": role})
    );
}
