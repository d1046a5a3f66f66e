//! `ferry init`, `ferry id` and `ferry doctor`: a node's identity and a check of its setup.

use std::time::Duration;

use anyhow::{bail, Context as _};
use libp2p::Multiaddr;

use super::Context;
use crate::config::{CONFIG_FILE, TEMPLATE};
use crate::identity::{account_hex, Identity};

/// Makes the identity (new, or a dev chain's funded account for `role`) and a commented config file.
pub fn init(ctx: &Context, dev_account: Option<String>) -> anyhow::Result<()> {
    let home = &ctx.home;
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    let id = match dev_account {
        None => Identity::create(home)?,
        Some(role) => {
            let secret = crate::identity::dev_secret(&role).with_context(|| {
                format!("--dev-account {role:?}: the dev chain funds {:?}", crate::identity::DEV_ROLES)
            })?;
            Identity::create_from(home, secret)?
        }
    };
    crate::api::token::load_or_create(home).context("cannot write the API token")?;
    let cfg = home.join(CONFIG_FILE);
    if !cfg.exists() {
        std::fs::write(&cfg, TEMPLATE).with_context(|| format!("cannot write {}", cfg.display()))?;
    }
    println!("peer id: {}", id.peer_id);
    println!("account: {}", account_hex(&id.account));
    eprintln!("identity and config written to {}", home.display());
    Ok(())
}

pub fn id(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let id = ctx.identity()?;
    if json {
        println!("{}", serde_json::json!({"peer_id": id.peer_id.to_string(), "account": account_hex(&id.account)}));
    } else {
        println!("peer id: {}", id.peer_id);
        println!("account: {}", account_hex(&id.account));
    }
    Ok(())
}

/// Prints every check; fails if any did, since each names its own fix.
pub async fn doctor(ctx: &Context, listen: Vec<Multiaddr>, patience: Duration) -> anyhow::Result<()> {
    let checks =
        crate::doctor::run(crate::doctor::Setup { home: ctx.home.clone(), listen, chain: ctx.chain.clone(), patience })
            .await;
    for c in &checks {
        println!("{c}");
    }
    let failed = checks.iter().filter(|c| c.failed()).count();
    if failed > 0 {
        bail!("{failed} check(s) failed; each names its fix above");
    }
    Ok(())
}
