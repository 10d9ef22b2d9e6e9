//! Phone numbers: parsed with libphonenumber's metadata (the `phonenumber` crate), Norway as the
//! default region, foreign numbers accepted, stored in E.164 (`+4791234567`).

use phonenumber::{Mode, Type, country, metadata::DATABASE};

/// What the number will be used for: SMS needs a mobile; a next of kin may be reached on any line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Sms,
    Call,
}

/// Normalises to E.164 or says what is wrong with the number.
pub fn normalise(input: &str, usage: Use) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("give a phone number, e.g. +4791234567 or 912 34 567".into());
    }
    let number = phonenumber::parse(Some(country::Id::NO), trimmed)
        .map_err(|_| "not a phone number; write it as +4791234567 or 912 34 567".to_owned())?;
    if !number.is_valid() {
        return Err(
            "not a valid phone number for its country; check the digits and the country code"
                .into(),
        );
    }
    let e164 = number.format().mode(Mode::E164).to_string();
    if usage == Use::Sms {
        // Norwegian numbers starting with 59 are machine-to-machine (M2M) SIMs, never a person.
        if e164.starts_with("+4759") {
            return Err("numbers beginning with 59 are machine-to-machine SIMs; give the patient's mobile number".into());
        }
        match number.number_type(&DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            _ => {
                return Err(
                    "not a mobile number, so it cannot receive SMS; add it as a next_of_kin phone or give a mobile number".into(),
                );
            }
        }
    }
    Ok(e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norwegian_mobiles_in_any_spelling_become_e164() {
        for input in [
            "91234567",
            "912 34 567",
            "+47 912 34 567",
            "004791234567",
            "41234567",
        ] {
            let expected = if input == "41234567" {
                "+4741234567"
            } else {
                "+4791234567"
            };
            assert_eq!(
                normalise(input, Use::Sms).as_deref(),
                Ok(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn foreign_mobiles_are_accepted() {
        assert_eq!(
            normalise("+46 70 123 45 67", Use::Sms).as_deref(),
            Ok("+46701234567")
        );
    }

    #[test]
    fn landlines_cannot_take_sms_but_can_be_called() {
        assert!(normalise("22 12 34 56", Use::Sms).is_err());
        assert_eq!(
            normalise("22 12 34 56", Use::Call).as_deref(),
            Ok("+4722123456")
        );
    }

    #[test]
    fn garbage_and_m2m_are_refused() {
        assert!(normalise("hello", Use::Sms).is_err());
        assert!(normalise("1234", Use::Sms).is_err());
        assert!(normalise("", Use::Sms).is_err());
        assert!(normalise("+4759123456789", Use::Sms).is_err());
    }
}
