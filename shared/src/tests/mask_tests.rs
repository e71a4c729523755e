//! The pre-filter: card numbers hidden before they leave the browser, order ids kept.

use proptest::prelude::*;

use crate::letters::{Kind, core_tables, no_tables};
use crate::mask::{HIDDEN, Mask, fold, luhn};

fn masked(text: &str) -> String {
    Mask::default().apply(text).0
}

/// Makes `body` (digits) Luhn-valid by choosing its last digit.
fn with_check_digit(body: &[u32]) -> Vec<u32> {
    (0..10)
        .map(|check| body.iter().copied().chain([check]).collect::<Vec<_>>())
        .find(|digits| luhn(digits))
        .unwrap_or_default()
}

#[test]
fn a_card_number_is_hidden_but_its_last_four() {
    assert_eq!(
        masked("my card is 4111 1111 1111 1111, ok?"),
        "my card is •••• •••• •••• 1111, ok?"
    );
    assert_eq!(masked("4111-1111-1111-1111"), "••••-••••-••••-1111");
    assert_eq!(masked("378282246310005"), "•••••••••••0005", "Amex, 15 digits");
    assert!(!Mask::default().apply("hello").1);
    assert!(Mask::default().apply("4111111111111111").1);
}

#[test]
fn order_ids_phone_numbers_and_dates_stay() {
    for kept in [
        "order 4111111111111112", // fails Luhn
        "call +49 30 1234 5678",  // too few digits
        "ref 123456789012",       // 12 digits
        "A4111111111111111",      // part of a word
        "41111111111111110000",   // 20 digits
        "on 2024-05-17 at 10:30",
    ] {
        assert_eq!(masked(kept), kept);
    }
}

#[test]
fn a_sites_templates_and_no_filter_at_all() {
    let mask = Mask::of(
        &["card".into(), "###-##-####".into(), "@@## #### #### #### #### ##".into()],
        core_tables,
    );
    assert_eq!(mask.apply("ssn 123-45-6789.").0, "ssn •••-••-••••.");
    assert_eq!(mask.apply("DE89 3704 0044 0532 0130 00").0, "•••• •••• •••• •••• •••• ••");
    assert_eq!(mask.apply("de89370400440532013000").0, "••••••••••••••••••••••");
    assert_eq!(mask.apply("4111111111111111").0, "••••••••••••1111");
    assert_eq!(mask.apply("1234-45-6789").0, "1234-45-6789", "not a whole match");
    let off = Mask::of(&[], core_tables);
    assert_eq!(off.apply("4111111111111111").0, "4111111111111111");
    let only_ssn = Mask::of(&["###-##-####".into()], core_tables);
    assert_eq!(only_ssn.apply("4111111111111111").0, "4111111111111111", "card left out");
}

proptest! {
    #[test]
    fn every_luhn_valid_card_number_is_hidden(
        body in proptest::collection::vec(0_u32..10, 12..=18),
        separators in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-")], 19),
        before in "[ a-z:,]{0,5}",
        after in "[ a-z.,!]{0,5}",
    ) {
        let digits = with_check_digit(&body);
        let mut number = String::new();
        for (i, d) in digits.iter().enumerate() {
            if i > 0 {
                number.push_str(separators[i]);
            }
            number.push(char::from_digit(*d, 10).unwrap_or('0'));
        }
        let before = if before.ends_with(|c: char| c.is_alphanumeric()) { format!("{before} ") } else { before };
        let after = if after.starts_with(|c: char| c.is_alphanumeric()) { format!(" {after}") } else { after };
        let (out, hidden) = Mask::default().apply(&format!("{before}{number}{after}"));
        prop_assert!(hidden);
        let shown_digits = out.chars().filter(char::is_ascii_digit).count();
        prop_assert_eq!(shown_digits, 4, "only the last four show: {}", out);
        prop_assert_eq!(out.chars().filter(|c| *c == HIDDEN).count(), digits.len() - 4);
    }

    #[test]
    fn numbers_that_fail_luhn_or_are_short_stay(
        digits in proptest::collection::vec(0_u32..10, 1..=19),
    ) {
        let text: String = digits.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect();
        if digits.len() < 13 || !luhn(&digits) {
            prop_assert_eq!(masked(&text), text);
        }
    }
}

#[test]
fn the_machine_sends_and_shows_the_hidden_line_and_says_why() {
    use crate::gms::ChatOperation;
    use crate::visitor::{ChatState, Effect, Input, Machine, Notice, Stored};
    let chat = ChatState::new("svc", super::fixtures::tokens("C"));
    let stored = Stored { device_id: "d".into(), chat: Some(chat), ..Stored::default() };
    let mut m = Machine::new(stored.clone(), "svc", "");
    let out = m.step(Input::Send("pay with 4111 1111 1111 1111 please".into()));
    let sent: Vec<&str> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Gms { operation: ChatOperation::Send { message, .. }, .. } => {
                Some(message.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent, ["pay with •••• •••• •••• 1111 please"]);
    assert_eq!(m.outbox[0].text, sent[0], "the visitor sees what was sent");
    assert_eq!(m.notice, Some(Notice::Masked));
    let mut off = Machine::new(stored, "svc", "").with_mask(Mask::of(&[], core_tables));
    let out = off.step(Input::Send("4111 1111 1111 1111".into()));
    assert!(out.iter().any(|e| matches!(e,
        Effect::Gms { operation: ChatOperation::Send { message, .. }, .. } if message == "4111 1111 1111 1111")));
    assert_eq!(off.notice, None);
}

#[test]
fn a_templates_letters_match_in_either_case_as_the_standard_library_folds_them() {
    // Never a case the standard library would not give, and exactly its case for the
    // Latin, Greek and Cyrillic capitals that have a one-letter lower case.
    let covered = |c: char| matches!(u32::from(c), 0x41..=0x5A | 0xC0..=0xDE | 0x100..=0x17F | 0x391..=0x3AB | 0x400..=0x42F);
    let mut folded = 0;
    for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
        let standard: Vec<char> = c.to_lowercase().collect();
        let one = (standard.len() == 1).then(|| standard[0]);
        if fold(c) != c {
            assert_eq!(Some(fold(c)), one, "{c:?} folds to {:?}", fold(c));
            folded += 1;
        } else if covered(c) && c.is_uppercase() {
            assert!(one == Some(c) || standard.len() > 1, "{c:?} should fold to {standard:?}");
        }
    }
    assert!(folded > 150, "{folded} capitals folded");
    let ids = Mask::of(&["ab-####".into(), "ДК ###".into()], core_tables);
    assert_eq!(ids.apply("order AB-1234, card дк-567").0, "order ••-••••, card ••-•••");
    assert!(ids.apply("Ab-1234").1);
}

#[test]
fn letters_and_digits_beyond_ascii_are_the_platforms() {
    // Core's tables: a card glued to a letter of any script is part of a word, left alone;
    // after a mark that is not a letter it is hidden; a template's `@` takes any letter.
    let ids = Mask::of(&["card".into(), "@@-####".into()], core_tables);
    assert_eq!(ids.apply("é4111111111111111").0, "é4111111111111111");
    assert_eq!(ids.apply("«4111111111111111»").0, "«••••••••••••1111»");
    assert_eq!(ids.apply("ref ÄΩ-1234 ok").0, "ref ••-•••• ok");
    assert_eq!(ids.apply("٣4111111111111111").0, "٣4111111111111111", "an Arabic-Indic digit");
    // Another platform's answer is the one asked: with no letters beyond ASCII, the same
    // text reads otherwise.
    let none = Mask::of(&["card".into(), "@@-####".into()], no_tables);
    assert_eq!(none.apply("é4111111111111111").0, "é••••••••••••1111");
    assert_eq!(none.apply("ref ÄΩ-1234 ok").0, "ref ÄΩ-1234 ok");
    for c in (0..0x3_0000).filter_map(char::from_u32) {
        let kind = core_tables(c);
        assert_eq!(kind != Kind::Other, c.is_alphanumeric(), "{c:?}");
        assert_eq!(kind == Kind::Letter, c.is_alphabetic(), "{c:?}");
    }
}
