//! Staff e-mail: what staff were told (`notifications`) becomes one short mail per person —
//! "Du har 2 nye oppgaver til teamet" and a link to the staff pages, never patient data — and
//! queued mails are sent with retries. Sending runs in its own task, apart from the engine, so
//! a slow or refusing mail server never holds up a notice.
//!
//! People choose `immediate` (composed every round), `daily` (composed by the 07:00 cron job)
//! or `off`.

use crate::engine::{Engine, Result};
use chrono::{DateTime, TimeDelta, Utc};
use kontaktvei_channels::email::{Mail, Mailer, SendError, Sent};
use kontaktvei_store::emails::{self, EmailStatus};
use kontaktvei_store::notifications::{self, NotificationKind};
use kontaktvei_store::staff::{self, EmailDigest};
use kontaktvei_store::{Id, Store};
use kontaktvei_templates::{self as templates, Lang};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Tries before a mail is marked failed: 1, 2, 4 … minutes apart, about 4 hours in all.
const MAX_ATTEMPTS: i32 = 8;
/// How long one instance may hold a mail it is sending before another may try.
const SEND_LEASE: TimeDelta = TimeDelta::minutes(5);

/// Turns unmailed notifications of people with this digest setting into one queued mail each.
/// Returns how many mails were queued.
pub async fn compose(engine: &Engine, now: DateTime<Utc>, digest: EmailDigest) -> Result<usize> {
    let mut tx = engine.store().begin().await?;
    let pending = notifications::unmailed(&mut tx, digest.as_str(), 5000).await?;
    let mut by_staff: BTreeMap<Id, Vec<(Id, NotificationKind)>> = BTreeMap::new();
    for n in &pending {
        if let Some(s) = n.staff_id {
            by_staff.entry(s).or_default().push((n.id, n.kind));
        }
    }
    let mut queued = 0;
    for (staff_id, items) in by_staff {
        let person = staff::get_staff(&mut tx, staff_id).await?;
        let Some(address) = person.email.as_deref() else {
            continue;
        };
        let mut counts: BTreeMap<&'static str, (NotificationKind, usize)> = BTreeMap::new();
        let mut marked = 0;
        for (id, kind) in &items {
            // Compare-and-set: another instance composing at the same moment skips it.
            if notifications::mark_emailed(&mut tx, *id, now).await? {
                counts.entry(kind.as_str()).or_insert((*kind, 0)).1 += 1;
                marked += 1;
            }
        }
        if marked == 0 {
            continue;
        }
        // The organisation's own text for staff e-mail ("E-post til ansatte") if it has one.
        let email = templates::StaffEmail {
            staff_name: person.name.clone(),
            count: marked,
            lines: counts
                .values()
                .map(|(kind, n)| kind.summary_nb(*n))
                .collect(),
            link: format!("{}/staff", engine.public_base_url().trim_end_matches('/')),
        };
        let overrides = engine.overrides(&mut tx, person.organisation_id).await?;
        let catalog = engine.catalog();
        let rendered = match catalog.render_staff_email(&Lang::NB, &email, &overrides) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(organisation_id = %person.organisation_id, error = %e, "the organisation's staff e-mail text failed; the default is used");
                catalog
                    .render_staff_email(&Lang::NB, &email, &templates::Overrides::new())
                    .map_err(|e| crate::engine::Error::Template(e.to_string()))?
            }
        };
        let subject = rendered.title.unwrap_or_else(|| "kontaktvei".to_owned());
        let body = rendered.text;
        emails::enqueue(
            &mut tx,
            staff_id,
            person.organisation_id,
            address,
            &subject,
            &body,
            now,
        )
        .await?;
        queued += 1;
    }
    tx.commit().await?;
    Ok(queued)
}

/// Sends queued mails that are due. Returns how many were sent (or kept in the outbox).
pub async fn send_due(store: &Store, mailer: &Mailer, now: DateTime<Utc>) -> Result<usize> {
    let mut tx = store.begin().await?;
    let due = emails::lease_due(&mut tx, now, now + SEND_LEASE, 20).await?;
    tx.commit().await?;
    let transport = mailer.describe();
    let mut sent = 0;
    for mail in due {
        let result = mailer
            .send(&Mail {
                to: mail.to_address.clone(),
                subject: mail.subject.clone(),
                body: mail.body.clone(),
                message_id: mail.id.to_string(),
            })
            .await;
        let mut tx = store.begin().await?;
        match result {
            Ok(how) => {
                let status = if matches!(how, Sent::KeptInOutbox) {
                    EmailStatus::Outbox
                } else {
                    EmailStatus::Sent
                };
                emails::mark_done(&mut tx, mail.id, status, &transport, now).await?;
                sent += 1;
            }
            Err(e) => {
                let attempts = mail.attempts + 1;
                let retry_at = match &e {
                    SendError::Temporary(_) if attempts < MAX_ATTEMPTS => {
                        Some(now + TimeDelta::minutes(1_i64 << (attempts - 1).clamp(0, 7)))
                    }
                    _ => None,
                };
                match retry_at {
                    Some(_) => {
                        tracing::warn!(email_id = %mail.id, attempts, error = %e, "staff e-mail not sent; will retry")
                    }
                    None => {
                        tracing::error!(email_id = %mail.id, attempts, error = %e, "staff e-mail given up")
                    }
                }
                emails::mark_attempt_failed(&mut tx, mail.id, &e.to_string(), &transport, retry_at)
                    .await?;
            }
        }
        tx.commit().await?;
    }
    Ok(sent)
}

/// The mail loop of a running server: compose and send every interval until shutdown.
pub async fn run(
    engine: Arc<Engine>,
    mailer: Mailer,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(transport = %mailer.describe(), "staff e-mail worker started");
    loop {
        let now = engine.now();
        if let Err(e) = compose(&engine, now, EmailDigest::Immediate).await {
            tracing::error!(error = %e, "composing staff e-mail failed; retrying next interval");
        }
        if let Err(e) = send_due(engine.store(), &mailer, now).await {
            tracing::error!(error = %e, "sending staff e-mail failed; retrying next interval");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    tracing::info!("staff e-mail worker stopped");
}
