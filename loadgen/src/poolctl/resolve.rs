//! `poolctl resolve POOL`: one handle resolution through a registrar, as a
//! pool user of `rserpool-client` does it, printed as a table or JSON.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use rserpool_client::{Error, PeInfo, PoolUser, ResolveError, UserConfig};
use serde_json::json;

use super::client::{CmdError, RegistrarArgs, pe_json, pe_policy_text, table};

/// Arguments of `poolctl resolve`.
#[derive(Clone, Debug, Args)]
pub struct ResolveArgs {
    /// The pool handle (1 to 32 bytes).
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// How many PEs to ask for (RSPLIB's Handle Resolution option; 0 leaves
    /// it out and the registrar decides).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub items: u32,
    /// The registrar.
    #[command(flatten)]
    pub registrar: RegistrarArgs,
}

/// Resolves the pool; on success the answer goes to `out`.
pub fn run(args: &ResolveArgs, out: &mut impl Write) -> Result<(), CmdError> {
    let cfg = args.registrar.config()?;
    let user = UserConfig {
        cache_lifetime: Duration::ZERO,
        resolution_items: args.items,
        ..UserConfig::default()
    };
    let pu = PoolUser::new(&cfg, &user)
        .map_err(|e| CmdError::Failed(format!("cannot start a pool user: {e}")))?;
    let pes = pu
        .handle_resolution(args.pool.as_bytes())
        .map_err(|e| failure(args, &e))?;
    if args.registrar.json {
        let v = json!({
            "pool": args.pool,
            "registrar": args.registrar.describe(),
            "elements": pes.iter().map(pe_json).collect::<Vec<_>>(),
        });
        writeln!(out, "{v}")?;
    } else {
        out.write_all(render(&args.pool, &args.registrar.describe(), &pes).as_bytes())?;
    }
    Ok(())
}

fn failure(args: &ResolveArgs, e: &Error) -> CmdError {
    let pool = &args.pool;
    let regs = args.registrar.describe();
    match e {
        Error::InvalidPoolHandle => {
            CmdError::Usage(format!("invalid pool handle {pool:?} (1 to 32 bytes)"))
        }
        Error::Resolve(ResolveError::UnknownPool) => {
            CmdError::Failed(format!("unknown pool {pool:?} (registrar {regs})"))
        }
        Error::Resolve(ResolveError::Request(r)) | Error::Request(r) => {
            CmdError::Failed(format!("resolve {pool:?}: {r} (tried {regs})"))
        }
        e => CmdError::Failed(format!("resolve {pool:?}: {e} (registrar {regs})")),
    }
}

/// The table: a title line, then one row per PE in the registrar's order.
pub fn render(pool: &str, registrar: &str, pes: &[PeInfo]) -> String {
    let rows: Vec<Vec<String>> = pes
        .iter()
        .map(|p| {
            let addrs = p
                .addresses
                .iter()
                .map(|a| match a {
                    std::net::IpAddr::V6(_) => format!("[{a}]"),
                    std::net::IpAddr::V4(_) => a.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",");
            vec![
                p.id.to_string(),
                p.transport.name().to_string(),
                format!("{addrs}:{}", p.port),
                pe_policy_text(p),
                format!("0x{:08x}", p.home_server.0),
                p.registration_life.to_string(),
            ]
        })
        .collect();
    let mut s = format!(
        "pool {pool}: {} PE{} (registrar {registrar})\n",
        pes.len(),
        if pes.len() == 1 { "" } else { "s" }
    );
    s.push_str(&table(
        &["PE ID", "TRANSPORT", "ADDRESS", "POLICY", "HOME", "LIFE"],
        &rows,
    ));
    s
}
