//! The start page, `/staff`: who is logged in, and the pages for their role (and their kind of
//! organisation: a low-threshold service has no patient pages).

use super::{Page, StaffSession, WebError, role_label};
use crate::api::roles;
use crate::auth::Access;
use crate::context::AppContext;
use axum::extract::State;
use kontaktvei_store::organisations;
use kontaktvei_store::staff::Role;
use minijinja::{Value, context};

struct Link {
    href: &'static str,
    label: &'static str,
    about: &'static str,
    access: Access,
}

/// A page for these roles in any kind of organisation.
const fn open_to(roles: &'static [Role]) -> Access {
    Access {
        roles,
        record: false,
    }
}

/// The pages, and who may open them (as in the API).
const LINKS: &[Link] = &[
    Link {
        href: "/staff/oppgaver",
        label: "Oppgaver",
        about: "Beskjeder som skal gis videre, og pasienter som skal oppsøkes.",
        access: open_to(&[Role::Admin, Role::Coordinator, Role::Relay, Role::Outreach]),
    },
    Link {
        href: "/staff/koordinator",
        label: "Koordinator",
        about: "Pasientene dine: kjeder som stoppet, uteblitte timer og overleveringer.",
        access: open_to(&[Role::Admin, Role::Coordinator]),
    },
    Link {
        href: "/staff/pasienter",
        label: "Pasienter",
        about: "Pasienter, kontaktpunkter og avtaler.",
        access: roles::READ_PATIENT,
    },
    Link {
        href: "/staff/utskrift",
        label: "Utskrift",
        about: "Brev som skal skrives ut og postlegges.",
        access: roles::PRINT,
    },
    Link {
        href: "/staff/rapport",
        label: "Rapport",
        about: "Nådde beskjedene fram før timen, og gjennom hvilken kanal?",
        access: roles::READ_REPORT,
    },
    Link {
        href: "/staff/admin",
        label: "Administrasjon",
        about: "Ansatte, innlogging og kontaktregler.",
        access: roles::ADMIN,
    },
];

/// The layout's view of the logged-in person, and the CSRF token its log-out form needs: the
/// context every logged-in page starts from.
pub fn staff_context(session: &StaffSession) -> Value {
    context! {
        staff => context! { name => session.name.clone(), role => role_label(session.role) },
        csrf => session.csrf_token(),
    }
}

pub async fn show(State(ctx): State<AppContext>, session: StaffSession) -> Result<Page, WebError> {
    let mut tx = ctx.store.begin_read().await?;
    let kind = organisations::get(&mut tx, session.organisation_id)
        .await?
        .kind;
    tx.commit().await?;
    let links: Vec<Value> = LINKS
        .iter()
        .filter(|l| l.access.allows(session.role, kind))
        .map(|l| context! { href => l.href, label => l.label, about => l.about })
        .collect();
    Ok(Page::new(
        "start.html",
        context! { title => "Startside", links, ..staff_context(&session) },
    ))
}
