//! A patient's timeline: what happened, in order — contact points added and retired,
//! appointments booked, moved, cancelled, attended or missed, and the notices they owed.
//! Built from the tables that own those facts, so it can never disagree with them.

use crate::appointments;
use crate::contact_points;
use crate::db::Tx;
use crate::error::Result;
use crate::id::Id;
use crate::notices;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `contact_point.added`, `contact_point.retired`, `appointment.booked`,
    /// `appointment.rescheduled`, `appointment.cancelled`, `appointment.attended`,
    /// `appointment.no_show`, `notice.created`, `step.<status>` (each thing that happened to a
    /// step of a notice's contact plan, with why), `sms.<kind>` (an SMS from the patient's phone:
    /// ack, reply, stop), `notice.acknowledged`, `notice.handed_over`, `task.created` and
    /// `task.<event>` (claimed, unclaimed, attempt, closed, cancelled, reminders), and
    /// `handover.<status>` (offered, accepted, declined, withdrawn).
    pub event: String,
    /// The contact point, appointment or notice the entry is about.
    pub subject_id: Id,
    /// A short description for staff: kinds, statuses and times, no message text.
    pub summary: String,
    /// Who did it, when a person or key did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

pub async fn for_patient(tx: &mut Tx, patient_id: Id) -> Result<Vec<TimelineEntry>> {
    let mut entries = Vec::new();
    for cp in contact_points::list(tx, patient_id).await? {
        entries.push(TimelineEntry {
            at: cp.created_at,
            event: "contact_point.added".into(),
            subject_id: cp.id,
            summary: format!("{} contact point added ({})", cp.kind, cp.provenance),
            actor: Some(cp.created_by.clone()),
        });
        if let Some(at) = cp.retired_at {
            entries.push(TimelineEntry {
                at,
                event: "contact_point.retired".into(),
                subject_id: cp.id,
                summary: format!(
                    "{} contact point retired: {}",
                    cp.kind,
                    cp.retired_reason.as_deref().unwrap_or("no reason given")
                ),
                actor: None,
            });
        }
    }
    for e in appointments::history_for_patient(tx, patient_id).await? {
        let mut summary = format!(
            "appointment {} — starts {}, {} min, {}",
            e.status,
            crate::clock::oslo_display(e.starts_at),
            e.duration_minutes,
            e.place
        );
        if let Some(reason) = &e.reason {
            summary.push_str(&format!(" (reason: {reason})"));
        }
        entries.push(TimelineEntry {
            at: e.at,
            event: format!("appointment.{}", e.status),
            subject_id: e.appointment_id,
            summary,
            actor: Some(e.actor),
        });
    }
    for n in notices::for_patient(tx, patient_id).await? {
        entries.push(TimelineEntry {
            at: n.created_at,
            event: "notice.created".into(),
            subject_id: n.id,
            summary: format!("{} notice, now {}", n.kind, n.status),
            actor: None,
        });
        let steps = crate::steps::for_notice(tx, n.id).await?;
        for e in crate::steps::events_for_notice(tx, n.id).await? {
            let Some(step) = steps.iter().find(|s| s.id == e.step_id) else {
                continue;
            };
            let mut summary = format!("{} notice: {} step {}", n.kind, step.channel, e.status);
            if let Some(detail) = &e.detail {
                summary.push_str(&format!(" ({detail})"));
            }
            entries.push(TimelineEntry {
                at: e.at,
                event: format!("step.{}", e.status),
                subject_id: n.id,
                summary,
                actor: None,
            });
        }
        for m in crate::inbound::for_notice(tx, n.id).await? {
            entries.push(TimelineEntry {
                at: m.received_at,
                event: format!("sms.{}", m.kind),
                subject_id: n.id,
                summary: format!(
                    "{} notice: an SMS from the patient's phone ({})",
                    n.kind, m.kind
                ),
                actor: None,
            });
        }
        if let (Some(holder), Some(at)) = (n.holder_staff_id, n.closed_at)
            && n.status == notices::NoticeStatus::HandedOver
        {
            entries.push(TimelineEntry {
                at,
                event: "notice.handed_over".into(),
                subject_id: n.id,
                summary: format!("{} notice taken over by a person", n.kind),
                actor: Some(format!("staff:{holder}")),
            });
        }
        if let Some(ack) = crate::acks::for_notice(tx, n.id).await? {
            entries.push(TimelineEntry {
                at: ack.at,
                event: "notice.acknowledged".into(),
                subject_id: n.id,
                summary: format!("{} notice acknowledged ({})", n.kind, ack.method),
                actor: Some(ack.actor),
            });
        }
    }
    for t in crate::tasks::for_patient(tx, patient_id).await? {
        entries.push(TimelineEntry {
            at: t.created_at,
            event: "task.created".into(),
            subject_id: t.id,
            summary: format!("{} task created: {}", t.kind, t.reason),
            actor: None,
        });
        for e in crate::tasks::events(tx, t.id).await? {
            let mut summary = format!("{} task {}", t.kind, e.kind);
            if let Some(result) = &e.result {
                summary.push_str(&format!(": {result}"));
            }
            if let Some(place) = &e.place {
                summary.push_str(&format!(" at {place}"));
            }
            entries.push(TimelineEntry {
                at: e.at,
                event: format!("task.{}", e.kind),
                subject_id: t.id,
                summary,
                actor: Some(e.actor),
            });
        }
    }
    for h in crate::handovers::for_patient(tx, patient_id).await? {
        let to = match h.to_staff_id {
            Some(s) => format!("staff {s}"),
            None => format!("organisation {}", h.to_organisation_id),
        };
        entries.push(TimelineEntry {
            at: h.offered_at,
            event: "handover.offered".into(),
            subject_id: h.id,
            summary: format!("{} offered to {to}", h.subject_kind),
            actor: Some(format!("staff:{}", h.from_staff_id)),
        });
        if let (Some(at), Some(by)) = (h.decided_at, h.decided_by) {
            entries.push(TimelineEntry {
                at,
                event: format!("handover.{}", h.status),
                subject_id: h.id,
                summary: format!("{} hand-over {}", h.subject_kind, h.status),
                actor: Some(format!("staff:{by}")),
            });
        }
    }
    // Within one instant, causes come before effects: the appointment before the notice it owes.
    entries.sort_by_key(|e| {
        (
            e.at,
            !e.event.starts_with("appointment."),
            e.event.starts_with("step."),
        )
    });
    Ok(entries)
}
