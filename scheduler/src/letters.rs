//! Letters as the print room gets them: a letter step's stored message with the address it goes
//! to, the organisation's (neutral) sender line and the printing date, ready for the renderer.
//! Print batches, posting and returned letters build on this (letter channel work).

use crate::engine::{Engine, Error, Result};
use chrono::NaiveDate;
use kontaktvei_channels::letter::{LetterContent, LetterMessage, reference_for};
use kontaktvei_store::contact_points;
use kontaktvei_store::steps::{self, ChannelKind, StepStatus};
use kontaktvei_store::{Id, Tx, notices};

impl Engine {
    /// The printable letter of a notice: its first letter step that was not skipped.
    pub async fn letter_for_notice(
        &self,
        tx: &mut Tx,
        notice_id: Id,
        date: NaiveDate,
    ) -> Result<LetterContent> {
        notices::get(tx, notice_id).await?;
        let step = steps::for_notice(tx, notice_id)
            .await?
            .into_iter()
            .find(|s| {
                s.channel == ChannelKind::Letter
                    && s.status != StepStatus::Skipped
                    && s.body.is_some()
            })
            .ok_or(Error::Store(kontaktvei_store::Error::NotFound(
                "letter for this notice",
            )))?;
        let message: LetterMessage =
            serde_json::from_str(step.body.as_deref().unwrap_or_default())?;
        let cp_id = step
            .contact_point_id
            .ok_or(Error::Store(kontaktvei_store::Error::NotFound("address")))?;
        let address = contact_points::get(tx, cp_id)
            .await?
            .address
            .ok_or(Error::Store(kontaktvei_store::Error::NotFound("address")))?;
        let policy = self.policy_of(tx, notice_id).await?;
        Ok(message.to_content(
            &address,
            &policy.letter_sender_line,
            date,
            &reference_for(step.id),
        ))
    }
}
