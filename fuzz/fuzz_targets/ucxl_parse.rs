//! Fuzzes `bzzz_protocol::ucxl::Address::parse`.
//!
//! The input bytes are parsed as a string when they are UTF-8 and lossy-converted otherwise. The
//! parser must not panic; when it accepts an input, the canonical form must be no longer than the
//! input, parse back to the same address and print the same again, and the address must match
//! itself and its base. Error messages must stay short whatever the input.

#![no_main]

use bzzz_protocol::ucxl::Address;
use libfuzzer_sys::fuzz_target;

/// Upper bound on an error message, in bytes (the same bound as `protocol/tests/ucxl_props.rs`).
const MAX_MESSAGE_LEN: usize = 400;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match Address::parse(&input) {
        Ok(address) => {
            let printed = address.to_string();
            assert!(
                printed.len() <= input.len(),
                "canonical {printed:?} is longer than input {input:?}"
            );
            match Address::parse(&printed) {
                Ok(again) => {
                    assert_eq!(again, address, "{input:?} printed as {printed:?}");
                    assert_eq!(again.to_string(), printed, "printing is not a fixpoint");
                }
                Err(e) => panic!("canonical form {printed:?} of {input:?} does not parse: {e}"),
            }
            assert!(address.matches(&address), "{address} does not match itself");
            assert!(address.matches(&address.base()), "{address} does not match its base");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.len() <= MAX_MESSAGE_LEN,
                "{}-byte message: {message}",
                message.len()
            );
        }
    }
});
