//! The channels a notice travels through, in the order of the default chain: SMS to a phone
//! the patient gave, a printed letter to a verified address, a message relayed by a
//! low-threshold service, and an outreach task for a team that goes to find the person.
//!
//! Each channel will implement one `Channel` trait (escalation engine issue); the providers
//! (Kannel, HTTP aggregators, the print batch, the human task lists) live beside it. Channels use
//! `templates` to render text and the store for their own rows; nothing here calls back up into
//! the scheduler or the gateway.

use std::fmt;

/// One kind of contact step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Sms,
    Letter,
    Relay,
    Outreach,
}

impl ChannelKind {
    /// The default chain, cheapest and fastest first, ending with people.
    pub const DEFAULT_CHAIN: [ChannelKind; 4] = [
        ChannelKind::Sms,
        ChannelKind::Letter,
        ChannelKind::Relay,
        ChannelKind::Outreach,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Sms => "sms",
            ChannelKind::Letter => "letter",
            ChannelKind::Relay => "relay",
            ChannelKind::Outreach => "outreach",
        }
    }

    /// Only people close a human step; the automatic channels end by an ack or a timeout.
    pub fn is_human(self) -> bool {
        matches!(self, ChannelKind::Relay | ChannelKind::Outreach)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_chain_ends_with_people() {
        let chain = ChannelKind::DEFAULT_CHAIN;
        assert!(!chain[0].is_human());
        assert!(chain.last().is_some_and(|c| c.is_human()));
        assert_eq!(
            chain.map(ChannelKind::as_str),
            ["sms", "letter", "relay", "outreach"]
        );
    }
}
