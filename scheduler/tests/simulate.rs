//! The reach simulation, small: on the TSB/ROP scenario kontaktvei never lets a notice end in
//! silence and reaches clearly more patients before their appointment than either baseline;
//! the same seed gives byte-identical results; and the general outpatient contrast holds too.

use kontaktvei_scheduler::simulate::{self, Scenario, SimConfig, scenario};

fn run(text: &str, patients: usize, days: u32, seed: u64) -> simulate::SimReport {
    let config = SimConfig {
        patients,
        days,
        seed,
        scenario: Scenario::parse(text).unwrap(),
    };
    simulate::run(&config).unwrap().0
}

#[test]
fn kontaktvei_reaches_more_and_never_ends_in_silence() {
    let report = run(scenario::TSB_ROP, 150, 21, 7);
    let k = &report.strategies["kontaktvei"].reach;
    let sms = &report.strategies["sms_only"].reach;
    let letter = &report.strategies["sms_then_letter"].reach;
    println!("{}", report.table());
    assert_eq!(k.silent_ends, 0, "no notice ends in silence: {k:?}");
    assert!(k.notices > 100, "a real population: {k:?}");
    assert!(
        k.acked_before_appointment > sms.acked_before_appointment + 0.1
            && k.acked_before_appointment > letter.acked_before_appointment + 0.1,
        "kontaktvei {} vs sms_only {} and sms_then_letter {}",
        k.acked_before_appointment,
        sms.acked_before_appointment,
        letter.acked_before_appointment
    );
    assert!(
        sms.silent_ends > 0,
        "the baselines do leave people in silence"
    );
    assert!(
        k.reached_by_channel.contains_key("relay") && k.reached_by_channel.contains_key("outreach")
    );
    assert_eq!(sms.reached_by_channel.keys().collect::<Vec<_>>(), ["sms"]);
    // The chart draws every strategy.
    let svg = report.chart_svg().unwrap();
    for name in ["kontaktvei", "sms_only", "sms_then_letter"] {
        assert!(svg.contains(name), "{name} in the chart");
    }
}

#[test]
fn the_same_seed_gives_the_same_figures() {
    let first = run(scenario::TSB_ROP, 60, 14, 42);
    let second = run(scenario::TSB_ROP, 60, 14, 42);
    let a = serde_json::to_string(&first.strategies).unwrap();
    let b = serde_json::to_string(&second.strategies).unwrap();
    assert_eq!(a, b, "byte-identical");
    let other = run(scenario::TSB_ROP, 60, 14, 43);
    assert_ne!(
        a,
        serde_json::to_string(&other.strategies).unwrap(),
        "the seed matters"
    );
}

#[test]
fn a_general_outpatient_clinic_is_reached_by_sms_alone() {
    let report = run(scenario::GENERAL_OUTPATIENT, 100, 21, 3);
    let k = &report.strategies["kontaktvei"].reach;
    let sms = &report.strategies["sms_only"].reach;
    assert_eq!(k.silent_ends, 0, "{k:?}");
    assert!(sms.acked_before_appointment > 0.7, "{sms:?}");
    assert!(
        k.acked_before_appointment >= sms.acked_before_appointment,
        "{k:?} vs {sms:?}"
    );
}
