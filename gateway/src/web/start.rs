//! The start page, `/staff`: who is logged in, and the pages for their role.

use super::{Page, StaffSession, role_label};
use crate::api::roles;
use kontaktvei_store::staff::Role;
use minijinja::{Value, context};

struct Link {
    href: &'static str,
    label: &'static str,
    about: &'static str,
    roles: &'static [Role],
}

/// The pages, and who may open them (as in the API).
const LINKS: &[Link] = &[
    Link {
        href: "/staff/oppgaver",
        label: "Oppgaver",
        about: "Beskjeder som skal gis videre, og pasienter som skal oppsøkes.",
        roles: &[Role::Admin, Role::Coordinator, Role::Relay, Role::Outreach],
    },
    Link {
        href: "/staff/koordinator",
        label: "Koordinator",
        about: "Pasientene dine: kjeder som stoppet, uteblitte timer og overleveringer.",
        roles: &[Role::Admin, Role::Coordinator],
    },
    Link {
        href: "/staff/pasienter",
        label: "Pasienter",
        about: "Pasienter, kontaktpunkter og avtaler.",
        roles: roles::READ_PATIENT.roles,
    },
    Link {
        href: "/staff/utskrift",
        label: "Utskrift",
        about: "Brev som skal skrives ut og postlegges.",
        roles: roles::PRINT.roles,
    },
    Link {
        href: "/staff/rapport",
        label: "Rapport",
        about: "Nådde beskjedene fram før timen, og gjennom hvilken kanal?",
        roles: roles::READ_REPORT.roles,
    },
    Link {
        href: "/staff/admin",
        label: "Administrasjon",
        about: "Ansatte, innlogging og kontaktregler.",
        roles: roles::ADMIN.roles,
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

pub async fn show(session: StaffSession) -> Page {
    let links: Vec<Value> = LINKS
        .iter()
        .filter(|l| l.roles.contains(&session.role))
        .map(|l| context! { href => l.href, label => l.label, about => l.about })
        .collect();
    Page::new(
        "start.html",
        context! { title => "Startside", links, ..staff_context(&session) },
    )
}
