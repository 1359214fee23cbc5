//! `clever-mock`: serve a fixture district as a local Clever Data API, so the Clever
//! plugin can be tried without a real district token.
//!
//! ```text
//! clever-mock --district fixtures/clever/district.json --port 7070 --token demo
//! CLEVER_TOKEN=demo roster import   # with base_url = "http://127.0.0.1:7070"
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use roster_clever_mock::{demo_fixture_path, District, ServerState};

#[derive(Parser)]
#[command(
    version,
    about = "A local Clever Data API (v2.0/v2.1/v3.0/v3.1) serving one fixture district"
)]
struct Args {
    /// The district fixture (neutral JSON form, see fixtures/clever/README.md).
    #[arg(long, default_value_os_t = demo_fixture_path())]
    district: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 7070)]
    port: u16,
    /// Address to listen on. Keep it on loopback: this is a test server.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The bearer token clients must send.
    #[arg(long, default_value = "demo")]
    token: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let district = match District::load(&args.district) {
        Ok(district) => district,
        Err(error) => {
            eprintln!("clever-mock: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("clever-mock: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        let addr = listener.local_addr()?;
        eprintln!(
            "clever-mock: serving district {} ({} students) at http://{addr}",
            district.id(),
            district.students.len()
        );
        eprintln!("clever-mock: versions v2.0 v2.1 v3.0 v3.1; faults: POST http://{addr}/__mock/faults; log: GET http://{addr}/__mock/requests");
        roster_clever_mock::serve(listener, ServerState::new(district, args.token)).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clever-mock: {error}");
            ExitCode::FAILURE
        }
    }
}
